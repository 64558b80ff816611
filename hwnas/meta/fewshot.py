"""HELP-style few-shot latency predictor for NAS-Bench-201 (Lee et al., NeurIPS 2021).

A device is described by its *hardware embedding*: its latencies of a small fixed set of
reference architectures (`reference_indices`, the same for every device). An MLP maps
(architecture encoding, hardware embedding) to the device's normalised latency, and is
meta-trained across the source devices by first-order MAML: for a sampled source device, a
support set (the references plus a random few) adapts a copy of the weights by a few SGD
steps, and the adapted copy's error on a query set of other architectures trains the
initial weights. A new device then needs the references measured (plus optionally a few
more); the same few SGD steps adapt the model to it, and it predicts the whole space.

Latencies are modelled as z = (log latency - mean) / std, the mean and std taken over the
device's reference latencies: ranks are what a search uses, and the log makes devices whose
latencies differ by orders of magnitude one learning problem. Path-less cells (some devices
record ~0.01 ms for them) are far out in z: a Huber loss keeps them from dominating.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hwnas.errors import DataError, HwnasError
from hwnas.latency.additive_fit import feature_matrix, live_edges
from hwnas.latency.additive_fit import N_EDGES

FORMAT_VERSION = 1
N_OPS = 5


@dataclass(frozen=True)
class MetaSettings:
    """What a meta-trained model depends on besides the data, the exclusions and the seed."""

    n_reference: int = 10  # reference architectures of the hardware embedding (HELP: 10)
    hidden: int = 128  # width of the MLP's hidden layers
    layers: int = 3  # hidden layers
    steps: int = 1000  # meta-training steps (outer updates)
    tasks_per_step: int = 4  # source devices per outer update
    max_extra: int = 40  # support sets hold the references + 0..max_extra random architectures
    query_size: int = 256  # architectures of a task's query set
    inner_steps: int = 5  # SGD steps of an adaptation (meta-training and on the target)
    inner_lr: float = 0.05
    outer_lr: float = 1e-3

    def __post_init__(self):
        for name in ("n_reference", "hidden", "layers", "steps", "tasks_per_step", "query_size"):
            if int(getattr(self, name)) < 1:
                raise HwnasError(f"meta-training setting {name} must be >= 1, got {getattr(self, name)}")
        if self.n_reference < 2:
            raise HwnasError("meta-training needs n_reference >= 2 (its spread normalises latencies)")
        if self.inner_steps < 0 or self.max_extra < 0:
            raise HwnasError("inner_steps and max_extra must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def arch_features(ops: np.ndarray) -> np.ndarray:
    """Encoding of architectures (n, 6 op ids): one-hot op per edge (30) + the additive fit's
    `path` features (live/dead op counts, connected or not; 12), as float32."""
    onehot = np.eye(N_OPS, dtype=np.float32)[ops].reshape(len(ops), -1)
    path = feature_matrix(ops, "path")[0].astype(np.float32) / N_EDGES
    return np.concatenate([onehot, path], axis=1)


def reference_indices(ops: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The reference set: `n` connected architectures, spread by farthest-point sampling.

    Starts from a seeded random connected architecture and adds, each time, the one farthest
    (Euclidean, `arch_features`) from those chosen; ties go to the lowest index. Depends only on
    the space, never on latencies, so a user can measure it before anything is trained. The order
    is the order of choice: the first k of n references are the k-reference set.
    """
    connected = np.nonzero(live_edges(ops)[1])[0]
    if not 1 <= n <= len(connected):
        raise HwnasError(f"n_reference must be in 1..{len(connected)}, got {n}")
    x = arch_features(ops[connected]).astype(np.float64)
    chosen = [int(np.random.default_rng(seed).integers(len(connected)))]
    dist = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))  # argmax: first (lowest index) of the ties
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(x - x[nxt], axis=1))
    return connected[np.array(chosen)]


def normalise(latency: np.ndarray, ref_latency: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(z of `latency`, mean, std) with the mean and std of the log reference latencies."""
    logr = np.log(ref_latency)
    mu, sd = float(logr.mean()), float(max(logr.std(), 1e-3))
    return (np.log(latency) - mu) / sd, mu, sd


class _MLP:
    """A plain MLP written functionally (weights in a dict) for MAML's adapted copies."""

    def __init__(self, n_in: int, hidden: int, layers: int):
        import torch

        self.shapes = []
        dims = [n_in] + [hidden] * layers + [1]
        self.params = {}
        for i in range(len(dims) - 1):
            lin = torch.nn.Linear(dims[i], dims[i + 1])  # torch's default initialisation (seeded by the caller)
            self.params[f"w{i}"] = lin.weight.detach().clone().requires_grad_()
            self.params[f"b{i}"] = lin.bias.detach().clone().requires_grad_()
        self.n_layers = len(dims) - 1

    @staticmethod
    def forward(params: dict, x, n_layers: int):
        import torch

        for i in range(n_layers):
            x = x @ params[f"w{i}"].T + params[f"b{i}"]
            if i < n_layers - 1:
                x = torch.relu(x)
        return x.squeeze(-1)


def _inputs(x, emb):
    import torch

    return torch.cat([x, emb.expand(len(x), -1)], dim=1)


def _loss(pred, z):
    import torch

    return torch.nn.functional.huber_loss(pred, z, delta=1.0)


def adapt(params: dict, n_layers: int, x, z, emb, steps: int, lr: float, create_graph: bool = False) -> dict:
    """`steps` SGD steps on (x, z) from `params` (first order: no graph through the steps)."""
    import torch

    # ANIL: only the output layer adapts; the body (and the hardware embedding it reads) is
    # shared. Adapting every layer by plain SGD from a few points overfits and diverges.
    head = {f"w{n_layers - 1}", f"b{n_layers - 1}"}
    fast = {k: v.detach().clone().requires_grad_(k in head) for k, v in params.items()}
    for _ in range(steps):
        loss = _loss(_MLP.forward(fast, _inputs(x, emb), n_layers), z)
        keys = sorted(head)
        grads = torch.autograd.grad(loss, [fast[k] for k in keys])
        for k, g in zip(keys, grads):
            fast[k] = (fast[k] - lr * g).detach().requires_grad_()
    return {k: v if k in head else v.detach().requires_grad_() for k, v in fast.items()}


def meta_train(ops: np.ndarray, device_latency: dict[str, np.ndarray], settings: MetaSettings, seed: int,
               progress=None) -> dict:
    """Meta-train on the given source devices (name -> latency of every architecture, ms).

    Returns the model's state (tensors and plain values only: torch.load(weights_only=True)).
    Deterministic for a seed: torch's RNG is seeded privately, numpy draws from its own generator.
    """
    import torch

    from hwnas.seeding import seeded

    if len(device_latency) < 1:
        raise HwnasError("meta-training needs at least one source device")
    s = settings
    names = sorted(device_latency)
    refs = reference_indices(ops, s.n_reference, seed=0)
    x_all = torch.from_numpy(arch_features(ops))
    z_all, embs = [], []
    for name in names:
        y = np.asarray(device_latency[name], dtype=float)
        z, _, _ = normalise(y, y[refs])
        z_all.append(torch.from_numpy(z.astype(np.float32)))
        embs.append(torch.from_numpy(z[refs].astype(np.float32)))
    rng = np.random.default_rng(seed)
    n_arch = len(ops)
    with seeded(seed):
        net = _MLP(x_all.shape[1] + s.n_reference, s.hidden, s.layers)
    opt = torch.optim.Adam(list(net.params.values()), lr=s.outer_lr)
    for step in range(s.steps):
        opt.zero_grad()
        for _ in range(s.tasks_per_step):
            d = int(rng.integers(len(names)))
            extra = rng.choice(n_arch, size=int(rng.integers(0, s.max_extra + 1)), replace=False)
            support = np.concatenate([refs, extra])
            query = rng.choice(n_arch, size=s.query_size, replace=False)
            fast = adapt(net.params, net.n_layers, x_all[support], z_all[d][support], embs[d],
                         s.inner_steps, s.inner_lr)
            q = _loss(_MLP.forward(fast, _inputs(x_all[query], embs[d]), net.n_layers), z_all[d][query])
            grads = torch.autograd.grad(q, list(fast.values()))
            # First-order MAML: the adapted copy's gradient is the initial weights' gradient.
            for p, g in zip(net.params.values(), grads):
                p.grad = g / s.tasks_per_step if p.grad is None else p.grad + g / s.tasks_per_step
        opt.step()
        if progress is not None:
            progress(step)
    return {"format": FORMAT_VERSION, "settings": s.to_dict(), "seed": int(seed), "sources": names,
            "reference": [int(i) for i in refs], "n_layers": net.n_layers,
            "params": {k: v.detach().clone() for k, v in net.params.items()}}


def check_state(state: dict) -> None:
    """Raise on a loaded state this code did not write (an old format, a foreign file)."""
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"not a format-{FORMAT_VERSION} few-shot latency model")
    for key in ("settings", "sources", "reference", "params", "n_layers"):
        if key not in state:
            raise ValueError(f"missing {key!r}")


def predict(state: dict, ops: np.ndarray, measured_idx: np.ndarray, measured_ms: np.ndarray) -> np.ndarray:
    """Latency (ms) of every architecture in `ops` on a device measured at `measured_idx`.

    `measured_idx` must contain every reference architecture (`state["reference"]`); all the
    measured ones form the support set of the adaptation.
    """
    import torch

    s = MetaSettings(**state["settings"])
    refs = np.asarray(state["reference"], dtype=np.int64)
    where = {int(i): k for k, i in enumerate(measured_idx)}
    missing = [int(r) for r in refs if int(r) not in where]
    if missing:
        raise DataError(f"{len(missing)} of the {len(refs)} reference architectures are not measured "
                        f"(indices {', '.join(map(str, missing))})")
    y = np.asarray(measured_ms, dtype=float)
    ref_y = y[[where[int(r)] for r in refs]]
    z, mu, sd = normalise(y, ref_y)
    emb = torch.from_numpy(((np.log(ref_y) - mu) / sd).astype(np.float32))
    x_all = torch.from_numpy(arch_features(ops))
    idx = torch.from_numpy(np.asarray(measured_idx, dtype=np.int64))
    fast = adapt(state["params"], state["n_layers"], x_all[idx], torch.from_numpy(z.astype(np.float32)), emb,
                 s.inner_steps, s.inner_lr)
    with torch.no_grad():
        zp = _MLP.forward(fast, _inputs(x_all, emb), state["n_layers"]).double().numpy()
    return np.exp(zp * sd + mu)
