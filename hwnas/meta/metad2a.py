"""MetaD2A-style transfer for NAS-Bench-201 (Lee, Hyung, Hwang, ICLR 2021), CPU-sized.

Two models, meta-trained once on source (task, device) pairs and then used on a target they
never saw:

- a **set-conditioned performance predictor**: an attentive set encoder reads the context, a
  set of (architecture, score) pairs observed on a task, and predicts any architecture's score
  on that task; an empty context is one learned null item (the prior learnt from the sources);
- a **conditional generator** over the 6 edges of a cell (autoregressive, one op per edge),
  conditioned on the same kind of set encoding of the task, the device's hardware embedding
  (its normalised latencies of the reference architectures of hwnas/meta/fewshot.py, as in
  item 1) and a latency cap; it is trained to emit the best architectures of the task under
  that cap on that device, so sweeping the cap sweeps the front.

Scores are rank-based so tasks with different scales (CIFAR-10 near 94 %, ImageNet16-120 near
47 %, Darcy's relative error) are one learning problem: the predictor's target is a task's
normal score (the inverse normal CDF of an architecture's rank quantile among the connected
cells, which spreads the top), and a context's values are the normal scores of ranks within the
context (computable on the target, whose distribution is unknown).

Simplification against the paper (documented in docs/metad2a.md): the paper encodes a dataset
from a sample of its *images* and decodes graphs with a graph VAE; here the task is encoded
from (architecture, score) pairs, as the issue asks, and the decoder is an autoregressive
categorical model over NB-201's fixed 6-edge DAG (every cell is the same DAG; only the ops vary).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hwnas.errors import HwnasError
from hwnas.meta.fewshot import N_OPS, arch_features, normalise, reference_indices

FORMAT_VERSION = 1
N_EDGES = 6


@dataclass(frozen=True)
class D2ASettings:
    """What the meta-trained models depend on besides the data, the exclusions and the seed."""

    hidden: int = 64  # width of every layer
    steps: int = 600  # meta-training steps of each model
    episodes: int = 8  # (task[, device]) episodes per step
    context_max: int = 64  # largest context set of an episode (0..context_max, uniform)
    query_size: int = 128  # architectures scored per predictor episode (half from the task's top 10 %)
    targets: int = 16  # architectures the generator learns to emit per episode
    top_fraction: float = 0.01  # generator targets: the best (this fraction of the space's cells) under the cap
    lr: float = 2e-3
    n_reference: int = 10  # reference architectures of the hardware embedding (as device=fewshot)

    def __post_init__(self):
        for name in ("hidden", "steps", "episodes", "query_size", "targets", "n_reference"):
            if int(getattr(self, name)) < 1:
                raise HwnasError(f"metad2a meta-training setting {name} must be >= 1, got {getattr(self, name)}")
        if self.context_max < 0 or not 0 < self.top_fraction <= 1 or not self.lr > 0:
            raise HwnasError("metad2a: context_max must be >= 0, top_fraction in (0, 1], lr > 0")
        if self.n_reference < 2:
            raise HwnasError("metad2a needs n_reference >= 2 (its spread normalises latencies)")

    def to_dict(self) -> dict:
        return asdict(self)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Inverse normal CDF of each value's rank quantile (higher value, higher score; ties averaged)."""
    from scipy.stats import norm, rankdata

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return np.zeros(len(v))
    return norm.ppf((rankdata(v) - 0.5) / len(v))


# --- the models -------------------------------------------------------------------------------
def _mlp(n_in: int, hidden: int, n_out: int):
    import torch.nn as nn

    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def _modules():
    """The torch modules, defined on first use so importing this file needs no torch."""
    import torch
    import torch.nn as nn

    class SetEncoder(nn.Module):
        """Context (x_i, r_i), i < k, -> item embeddings (+ a learned null item) and a pooled vector."""

        def __init__(self, n_x: int, hidden: int):
            super().__init__()
            self.item = nn.Sequential(nn.Linear(n_x + 1, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.null = nn.Parameter(torch.zeros(1, 1, hidden))
            self.pool = nn.Linear(hidden, hidden)

        def forward(self, xc, rc, mask):
            b = xc.shape[0]
            e = self.item(torch.cat([xc, rc.unsqueeze(-1)], -1))
            e = torch.cat([self.null.expand(b, 1, -1), e], 1)
            m = torch.cat([torch.ones(b, 1, dtype=mask.dtype), mask], 1).float()
            pooled = (e * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
            return e, m, torch.relu(self.pool(pooled))

    class Predictor(nn.Module):
        """Score of query architectures on the task the context describes (an attentive neural process)."""

        def __init__(self, n_x: int, hidden: int):
            super().__init__()
            self.enc = SetEncoder(n_x, hidden)
            self.embed = nn.Sequential(nn.Linear(n_x, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.null_key = nn.Parameter(torch.zeros(1, 1, hidden))
            self.head = nn.Sequential(nn.Linear(3 * hidden + 1, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                      nn.ReLU(), nn.Linear(hidden, 1))
            self.scale = 1.0 / math.sqrt(hidden)

        def forward(self, xq, xc, rc, mask):
            e, m, g = self.enc(xc, rc, mask)
            h = self.embed(xq)  # B x Q x H
            # Keys are the context architectures' embeddings (the same map as the queries'): a
            # query attends to the observed architectures most like it, and reads their scores.
            keys = torch.cat([self.null_key.expand(xc.shape[0], 1, -1), self.embed(xc)], 1)
            att = (h @ keys.transpose(1, 2)) * self.scale
            att = att.masked_fill(m.unsqueeze(1) == 0, -1e9).softmax(-1)
            a = att @ e
            logk = torch.log1p(m.sum(1, keepdim=True) - 1)  # context size, without the null item
            q = h.shape[1]
            z = torch.cat([h, a, g.unsqueeze(1).expand(-1, q, -1), logk.unsqueeze(1).expand(-1, q, -1)], -1)
            return self.head(z).squeeze(-1)

    class Generator(nn.Module):
        """p(ops | task context, hardware embedding, latency cap), one edge after another."""

        def __init__(self, n_x: int, hidden: int, n_hw: int):
            super().__init__()
            self.enc = SetEncoder(n_x, hidden)
            self.cond = nn.Sequential(nn.Linear(hidden + n_hw + 1, hidden), nn.ReLU())
            self.step = nn.Sequential(nn.Linear(hidden + N_EDGES * N_OPS + N_EDGES, hidden), nn.ReLU(),
                                      nn.Linear(hidden, N_OPS))

        def condition(self, xc, rc, mask, hw, cap):
            _, _, g = self.enc(xc, rc, mask)
            return self.cond(torch.cat([g, hw, cap.unsqueeze(-1)], -1))

        def _logits(self, c, prefix, pos: int):
            # prefix: n x 30 one-hots of the edges decided so far (zeros after `pos`)
            where = torch.zeros(len(c), N_EDGES)
            where[:, pos] = 1.0
            return self.step(torch.cat([c, prefix, where], -1))

        def log_prob(self, c, ops):
            """Mean log-likelihood per edge of `ops` (n x 6) under conditions `c` (n x H)."""
            onehot = torch.nn.functional.one_hot(ops, N_OPS).float().reshape(len(ops), -1)
            total = 0.0
            for pos in range(N_EDGES):
                prefix = onehot.clone()
                prefix[:, pos * N_OPS:] = 0.0
                logp = self._logits(c, prefix, pos).log_softmax(-1)
                total = total + logp.gather(1, ops[:, pos:pos + 1]).squeeze(1)
            return total / N_EDGES

        @torch.no_grad()
        def sample(self, c, gen, temperature: float = 1.0):
            prefix = torch.zeros(len(c), N_EDGES * N_OPS)
            out = torch.zeros(len(c), N_EDGES, dtype=torch.long)
            for pos in range(N_EDGES):
                p = (self._logits(c, prefix, pos) / temperature).softmax(-1)
                op = torch.multinomial(p, 1, generator=gen).squeeze(1)
                out[:, pos] = op
                prefix[torch.arange(len(c)), pos * N_OPS + op] = 1.0
            return out

    return SetEncoder, Predictor, Generator


# --- meta-training ----------------------------------------------------------------------------
class _Episodes:
    """Draws meta-training episodes from the source tasks (and devices); numpy, seeded."""

    def __init__(self, ops: np.ndarray, tasks: dict[str, np.ndarray], devices: dict[str, np.ndarray],
                 refs: np.ndarray, s: D2ASettings, rng: np.random.Generator):
        from hwnas.latency.additive_fit import live_edges

        self.s, self.rng = s, rng
        self.conn = np.nonzero(live_edges(ops)[1])[0]  # path-less cells are never queried: never learnt
        self.x = arch_features(ops)
        self.task_names = sorted(tasks)
        self.score = {}  # task -> normal score of every connected cell (index order of self.conn)
        self.order = {}  # task -> positions in self.conn, best first
        for t in self.task_names:
            y = np.asarray(tasks[t], dtype=float)[self.conn]
            self.score[t] = normal_scores(y)
            self.order[t] = np.argsort(-y, kind="stable")
        self.dev_names = sorted(devices)
        self.zlat, self.hw = {}, {}
        for d in self.dev_names:
            y = np.asarray(devices[d], dtype=float)
            z, _, _ = normalise(y, y[refs])
            self.zlat[d] = z[self.conn]
            self.hw[d] = z[refs].astype(np.float32)

    def _context(self, t: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions, within-context normal scores): random, or search-like (half from the top 10 %)."""
        k = int(self.rng.integers(0, self.s.context_max + 1))
        n = len(self.conn)
        if self.rng.random() < 0.5:
            pos = self.rng.choice(n, size=k, replace=False)
        else:
            top = self.order[t][: max(n // 10, 1)]
            k_top = min(k // 2, len(top))
            pos = np.concatenate([self.rng.choice(top, size=k_top, replace=False),
                                  self.rng.choice(n, size=k - k_top, replace=False)])
        return pos, normal_scores(self.score[t][pos])

    def _pad(self, contexts):
        k = max([len(p) for p, _ in contexts] + [1])
        b = len(contexts)
        xc = np.zeros((b, k, self.x.shape[1]), dtype=np.float32)
        rc = np.zeros((b, k), dtype=np.float32)
        mask = np.zeros((b, k), dtype=bool)
        for i, (pos, r) in enumerate(contexts):
            xc[i, :len(pos)] = self.x[self.conn[pos]]
            rc[i, :len(pos)] = r
            mask[i, :len(pos)] = True
        return xc, rc, mask

    def predictor_batch(self):
        s, n = self.s, len(self.conn)
        contexts, xq, yq = [], [], []
        for _ in range(s.episodes):
            t = self.task_names[int(self.rng.integers(len(self.task_names)))]
            contexts.append(self._context(t))
            half = s.query_size // 2
            top = self.order[t][: max(n // 10, 1)]
            q = np.concatenate([self.rng.choice(n, size=s.query_size - half), self.rng.choice(top, size=half)])
            xq.append(self.x[self.conn[q]])
            yq.append(self.score[t][q])
        return (*self._pad(contexts), np.stack(xq), np.stack(yq).astype(np.float32))

    def generator_batch(self):
        s, n = self.s, len(self.conn)
        contexts, hw, cap, targets = [], [], [], []
        for _ in range(s.episodes):
            t = self.task_names[int(self.rng.integers(len(self.task_names)))]
            d = self.dev_names[int(self.rng.integers(len(self.dev_names)))]
            z = self.zlat[d]
            c = float(np.quantile(z, self.rng.uniform(0.02, 1.0)))  # the cap: a latency quantile of the device
            ok = self.order[t][z[self.order[t]] <= c]  # feasible under the cap, best first
            best = ok[: max(round(s.top_fraction * n), 1)]
            targets.append(self.conn[self.rng.choice(best, size=s.targets)])
            contexts.append(self._context(t))
            hw.append(self.hw[d])
            cap.append(c)
        return (*self._pad(contexts), np.stack(hw), np.array(cap, dtype=np.float32), np.stack(targets))


def meta_train(ops: np.ndarray, tasks: dict[str, np.ndarray], devices: dict[str, np.ndarray],
               settings: D2ASettings, seed: int, progress=None) -> dict:
    """Meta-train the predictor and the generator on the source tasks (name -> score of every
    architecture, higher better) and source devices (name -> latency in ms).

    Deterministic for a seed (a private torch RNG, a numpy generator of its own). Returns tensors
    and plain values only (torch.load(weights_only=True) reads it back).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest, and busy machines stay usable
    try:
        return _meta_train(ops, tasks, devices, settings, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _meta_train(ops, tasks, devices, settings: D2ASettings, seed: int, progress) -> dict:
    import torch

    from hwnas.seeding import seeded

    if not tasks or not devices:
        raise HwnasError("metad2a meta-training needs at least one source task and one source device")
    s = settings
    refs = reference_indices(ops, s.n_reference, seed=0)
    ep = _Episodes(ops, tasks, devices, refs, s, np.random.default_rng(seed))
    _, Predictor, Generator = _modules()
    n_x = ep.x.shape[1]
    with seeded(seed):
        pred = Predictor(n_x, s.hidden)
        gen = Generator(n_x, s.hidden, s.n_reference)
    opt_p = torch.optim.Adam(pred.parameters(), lr=s.lr)
    opt_g = torch.optim.Adam(gen.parameters(), lr=s.lr)
    t = torch.from_numpy
    losses = {"predictor": [], "generator": []}
    for step in range(s.steps):
        xc, rc, mask, xq, yq = ep.predictor_batch()
        loss = torch.nn.functional.mse_loss(pred(t(xq), t(xc), t(rc), t(mask)), t(yq))
        opt_p.zero_grad()
        loss.backward()
        opt_p.step()
        losses["predictor"].append(loss.item())
        xc, rc, mask, hw, cap, targets = ep.generator_batch()
        c = gen.condition(t(xc), t(rc), t(mask), t(hw), t(cap))
        m = targets.shape[1]
        cc = c.unsqueeze(1).expand(-1, m, -1).reshape(-1, c.shape[1])
        nll = -gen.log_prob(cc, t(ops[targets.reshape(-1)]).long()).mean()
        opt_g.zero_grad()
        nll.backward()
        opt_g.step()
        losses["generator"].append(nll.item())
        if progress is not None:
            progress(step)
    tail = max(s.steps // 10, 1)  # the last tenth's mean: what the models reached
    return {"format": FORMAT_VERSION, "settings": s.to_dict(), "seed": int(seed),
            "tasks": ep.task_names, "devices": ep.dev_names, "reference": [int(i) for i in refs],
            "loss": {k: float(np.mean(v[-tail:])) for k, v in losses.items()},
            "predictor": {k: v.detach().clone() for k, v in pred.state_dict().items()},
            "generator": {k: v.detach().clone() for k, v in gen.state_dict().items()}}


def check_state(state: dict) -> None:
    """Raise on a loaded state this code did not write (an old format, a foreign file)."""
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"not a format-{FORMAT_VERSION} metad2a model")
    for key in ("settings", "tasks", "devices", "reference", "predictor", "generator"):
        if key not in state:
            raise ValueError(f"missing {key!r}")


class Models:
    """The meta-trained predictor and generator, ready to use on a target (no gradient)."""

    def __init__(self, state: dict):
        import torch

        check_state(state)
        self.settings = D2ASettings(**state["settings"])
        self.reference = np.asarray(state["reference"], dtype=np.int64)
        _, Predictor, Generator = _modules()
        n_x = arch_features(np.zeros((1, N_EDGES), dtype=np.int64)).shape[1]
        self.pred = Predictor(n_x, self.settings.hidden)
        self.gen = Generator(n_x, self.settings.hidden, self.settings.n_reference)
        self.n_x = n_x
        self.pred.load_state_dict(state["predictor"])
        self.gen.load_state_dict(state["generator"])
        self.pred.eval()
        self.gen.eval()
        self._torch = torch

    def _context(self, ctx_ops: np.ndarray, ctx_values: np.ndarray):
        t = self._torch
        ctx_ops = np.asarray(ctx_ops, dtype=np.int64).reshape(-1, N_EDGES)
        if len(ctx_ops) == 0:  # no observation yet: the null item alone (the prior)
            return t.zeros(1, 0, self.n_x), t.zeros(1, 0), t.zeros(1, 0, dtype=t.bool)
        xc = arch_features(ctx_ops)[None]
        rc = normal_scores(ctx_values).astype(np.float32)[None]
        return t.from_numpy(xc), t.from_numpy(rc), t.ones(1, len(ctx_values), dtype=t.bool)

    def predict(self, ops: np.ndarray, ctx_ops: np.ndarray, ctx_values: np.ndarray) -> np.ndarray:
        """Predicted normal score (higher better) of each architecture given the observed context."""
        t = self._torch
        with t.no_grad():
            xq = t.from_numpy(arch_features(np.asarray(ops, dtype=np.int64))[None])
            return self.pred(xq, *self._context(ctx_ops, ctx_values))[0].double().numpy()

    def hardware_embedding(self, ref_latency_ms: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(embedding, mean, std): the z of the reference latencies, with the log-normalisation."""
        ref = np.asarray(ref_latency_ms, dtype=float)
        z, mu, sd = normalise(ref, ref)
        return z.astype(np.float32), mu, sd

    def generate(self, n: int, ctx_ops, ctx_values, hw: np.ndarray, cap_z: float, gen,
                 temperature: float = 1.0) -> np.ndarray:
        """n op vectors (n x 6) from the generator for this context, device and cap (z units)."""
        t = self._torch
        with t.no_grad():
            c = self.gen.condition(*self._context(ctx_ops, ctx_values), t.from_numpy(hw[None]),
                                   t.tensor([float(cap_z)], dtype=t.float32))
            return self.gen.sample(c.expand(n, -1), gen, temperature).numpy()
