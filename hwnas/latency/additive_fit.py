"""Per-operation costs learned from whole-architecture latencies (NAS-Bench-201).

When a device has no per-op table, only end-to-end latencies of some architectures, an additive
model latency ~ sum_features count * cost is fitted by non-negative least squares
(scipy.optimize.nnls): a cost is never negative, so the model cannot explain one op by another's
negative time. Every cell of the network has the same genotype, so an op on an edge runs in all
15 cells (at 3 resolutions); its cost is the whole network's share of it.

Feature sets (`features=`):
  counts  how many of the 6 edges hold each non-`none` op, plus a constant (stem, reductions,
          head and the `none` ops: `none` is the baseline, cost 0).
  edge    op x edge position (6 x 4 indicators), plus a constant.
  path    op counts split into edges on an input->output path ("live") and the rest ("dead"),
          plus one constant for cells with a path and one for cells without. hwnas's network
          (spaces/nb201_net.py) runs every edge, a `none` edge multiplies by zero; an exporter
          or a compiler that folds x*0 can delete every op whose output only reaches a `none`
          edge, and for a cell with no path the whole network: HW-NAS-Bench's raspi4 and pixel3
          record ~0.1 ms for those. Dead costs near 0 show a device that prunes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import nnls

from hwnas.errors import HwnasError
from hwnas.spaces.nb201_cell import EDGES, OPS

N_EDGES = len(EDGES)
REAL_OPS = OPS[1:]  # `none` is the baseline of every feature set
DEFAULT_FEATURES = "path"


def op_matrix(archs) -> np.ndarray:
    """Op ids, shape (n, 6), from NB201Arch objects or an (n, 6) array of ids 0..4."""
    if isinstance(archs, np.ndarray) and archs.dtype != object:
        v = archs
    else:
        archs = list(archs)
        v = np.array([a.ops if hasattr(a, "ops") else a for a in archs])
    if v.ndim != 2 or v.shape[1] != N_EDGES or v.shape[0] == 0:
        raise HwnasError(f"need NAS-Bench-201 architectures: NB201Arch objects or an (n, {N_EDGES}) array "
                         f"of op ids, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= len(OPS):
        raise HwnasError(f"NAS-Bench-201 op ids must be integers 0..{len(OPS) - 1} ({', '.join(OPS)})")
    return v.astype(np.int64)


def live_edges(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(live (n, 6) bool: the edge's op lies on an input->output path; connected (n,) bool)."""
    on = v != 0
    # Node k is reachable from the input through non-`none` edges ...
    reach = [np.ones(len(v), bool)]
    for node in (1, 2, 3):
        r = np.zeros(len(v), bool)
        for e, (to, frm) in enumerate(EDGES):
            if to == node:
                r |= on[:, e] & reach[frm]
        reach.append(r)
    # ... and node k reaches the output through non-`none` edges.
    reaches_out = {3: np.ones(len(v), bool)}
    for node in (2, 1, 0):
        r = np.zeros(len(v), bool)
        for e, (to, frm) in enumerate(EDGES):
            if frm == node:
                r |= on[:, e] & reaches_out[to]
        reaches_out[node] = r
    live = np.stack([on[:, e] & reach[frm] & reaches_out[to] for e, (to, frm) in enumerate(EDGES)], axis=1)
    return live, reach[3]


def _counts(v: np.ndarray) -> tuple[np.ndarray, list[str]]:
    x = np.stack([(v == op).sum(1) for op in range(1, len(OPS))] + [np.ones(len(v))], axis=1)
    return x, [*REAL_OPS, "base"]


def _edge(v: np.ndarray) -> tuple[np.ndarray, list[str]]:
    cols, names = [], []
    for e, (to, frm) in enumerate(EDGES):
        for op in range(1, len(OPS)):
            cols.append(v[:, e] == op)
            names.append(f"{OPS[op]}:{frm}->{to}")
    return np.stack(cols + [np.ones(len(v))], axis=1), names + ["base"]


def _path(v: np.ndarray) -> tuple[np.ndarray, list[str]]:
    live, connected = live_edges(v)
    cols = [((v == op) & live).sum(1) for op in range(1, len(OPS))]
    # Dead ops count in connected cells only: a cell with no path computes a constant, and a
    # device that folds it keeps nothing of the network (one constant, "base (no path)").
    cols += [((v == op) & ~live).sum(1) * connected for op in range(1, len(OPS))]
    cols += [connected, ~connected]
    names = [*REAL_OPS, *(f"{op} (dead)" for op in REAL_OPS), "base", "base (no path)"]
    return np.stack(cols, axis=1), names


FEATURE_SETS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, list[str]]]] = {
    "counts": _counts, "edge": _edge, "path": _path}


def feature_matrix(archs, kind: str = DEFAULT_FEATURES) -> tuple[np.ndarray, list[str]]:
    """(feature matrix (n, k) float, k feature names) of architectures."""
    if kind not in FEATURE_SETS:
        raise HwnasError(f"unknown feature set {kind!r}; valid: {', '.join(FEATURE_SETS)}")
    x, names = FEATURE_SETS[kind](op_matrix(archs))
    return x.astype(float), names


def n_features(kind: str = DEFAULT_FEATURES) -> int:
    return feature_matrix(np.zeros((1, N_EDGES), np.int64), kind)[0].shape[1]


@dataclass(frozen=True)
class AdditiveModel:
    """latency = feature_matrix(arch) @ weights, weights >= 0 (ms per feature unit)."""

    kind: str
    names: tuple[str, ...]
    weights: np.ndarray
    n_train: int
    train_rmse_ms: float = field(default=0.0)

    def predict(self, archs) -> np.ndarray:
        """Predicted latency (ms) of each architecture, shape (n,).

        Rounded to 1e-9 ms: costs the solver leaves at ~1e-17 instead of 0 would otherwise order
        architectures that the model says are equal (it matters to rank correlations).
        """
        return np.round(feature_matrix(archs, self.kind)[0] @ self.weights, 9)

    @property
    def costs(self) -> dict[str, float]:
        """Cost (ms) of each feature, by name: an op's cost over the whole network."""
        return {n: float(w) for n, w in zip(self.names, self.weights)}

    def to_dict(self) -> dict:
        return {"features": self.kind, "n_train": self.n_train, "train_rmse_ms": self.train_rmse_ms,
                "costs_ms": self.costs}


def fit_additive(archs, latencies, features: str = DEFAULT_FEATURES) -> AdditiveModel:
    """Fit non-negative per-feature costs to measured latencies (ms) of `archs`.

    archs: NB201Arch objects or an (n, 6) array of op ids; latencies: shape (n,), finite, >= 0.
    """
    kind = features
    x, names = feature_matrix(archs, kind)
    y = np.asarray(latencies, dtype=float)
    if y.shape != (len(x),):
        raise HwnasError(f"need one latency per architecture: {len(x)} architectures, latencies of shape {y.shape}")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise HwnasError("latencies must be finite and >= 0 ms")
    w, _ = nnls(x, y)
    rmse = float(np.sqrt(np.mean((x @ w - y) ** 2)))
    return AdditiveModel(kind, tuple(names), w, len(y), rmse)


def sample_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """`n` distinct indices of 0..n_total-1, drawn with a seeded generator (sorted)."""
    if not 0 < n <= n_total:
        raise HwnasError(f"sample size must be in 1..{n_total}, got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def cross_validate(archs, latencies, features: str = DEFAULT_FEATURES, folds: int = 5, seed: int = 0) -> dict:
    """Fidelity (hwnas/latency/fidelity.py) of out-of-fold predictions: k-fold, seeded.

    What a user with only the measured architectures can check: whether the additive model
    predicts architectures it was not fitted on (README.md, section "`device=fitted`: a latency
    table from a few measured architectures", compares it with the truth).
    """
    from hwnas.latency.fidelity import fidelity

    v = op_matrix(archs)
    y = np.asarray(latencies, dtype=float)
    if not 2 <= folds <= len(y):
        raise HwnasError(f"cross-validation needs 2 <= folds <= {len(y)} architectures, got folds={folds}")
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.empty(len(y))
    for k in range(folds):
        test = fold == k
        pred[test] = fit_additive(v[~test], y[~test], features).predict(v[test])
    return fidelity(pred, y)
