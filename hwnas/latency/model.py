"""LatencyModel: an architecture's latency = sum of its operations' table latencies, then a
per-device linear calibration measured ~= a * sum + b.

Why calibrate: timing an operation alone adds the runtime's per-call overhead (session run,
input/output copies) to every operation and misses cross-layer effects (caches, fusion), so the
raw sum is biased. In NAS-Bench-201 every architecture runs the same number of operations
(`none` is listed), so the overhead is a near-constant offset (b) and the rest mostly a scale
(a). Two parameters fit by least squares on k architectures timed end to end; the profile app
reports how the validation error falls with k (table JSON, calibration.curve).

The raw table sum removes most of that overhead itself. A shape-preserving op (every cell edge
op, the node sums) is priced by its marginal cost: the table times it alone and as 8 copies
back to back, cost = (t_8 - t_1) / 7. Other ops (stem, reductions, head) cost their median
minus a no-op's median (one Identity, timed on the same input shape; floored at 0), and one
call's overhead (the no-op on the network input) is added back once. In NB-201 it counts the ops
the runtime runs (table_sum `distinct`, hwnas/latency/shared_ops.py): two weight-free edge ops
(pools, `none` Muls) reading one tensor are merged into one by the export and onnxruntime, so one
is priced; tables calibrated before that rule keep `all` (every listed op).

Calibration modes (`calibration=` of hwnas-profile; the table stores the fitted one):
  linear   measured ~= a * table sum + b (least squares).
  per_op   measured ~= a * table sum + sum_c d_c * (table cost of the ops of class c) + b: ops of
           different kinds are off by different factors inside a network (on this repository's
           CPU table a `none` edge costs ~3-4x its isolated marginal time, an avg pool ~0.9x), so
           class c's factor is a_c = a + d_c. Classes: the NB-201 edge ops but skip_connect (costs
           ~0, and with 6 edges per cell its per-edge offset is absorbed by b and the others).
  layout   measured ~= a * table sum + K @ c + b, K the kernels onnxruntime's CPU optimiser runs
           that no table entry prices: the layout conversions it inserts wherever a tensor meets
           an op it cannot block (the `none` Mul), and the ReLUs and Adds it cannot fuse into a
           convolution; hwnas/latency/layout.py counts them per architecture, c (ms per kernel)
           is fitted. On CPU tables this explains most of what the linear fit misses
           (docs/profiling.md "How a latency is predicted, and calibration", docs/latency.md).
  auto     (default) layout for NB-201 tables of onnxruntime CPU at graph_optimization=all, else per_op.
The extra coefficients (d_c, c) are ridge-shrunk toward 0, i.e. toward the linear model, with a
penalty picked by leave-one-out CV inside the calibration set (a large penalty is the linear fit),
on latencies divided by their mean so the penalty is scale-free. With fewer than MIN_PER_OP
(per_op) or MIN_LAYOUT (layout) calibration architectures the fit is linear, and says so.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from hwnas.errors import DataError, HwnasError
from hwnas.latency.shared_ops import SUM_RULES, folds, merged_edges, sum_rule
from hwnas.latency.table import LatencyTable
from hwnas.spaces.base import Arch, OpSpec, SearchSpace, require_profilable

MIN_CALIBRATION = 2  # two parameters
NOOP = "noop"
CALIBRATIONS = ("linear", "per_op", "layout")
DEFAULT_CALIBRATION = "auto"  # layout where its feature applies (layout_applies), else per_op
PER_OP_CLASSES = ("none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")  # NB-201 edge ops but skip
MIN_PER_OP = 10  # calibration architectures needed before per-class factors are fitted
MIN_LAYOUT = 5  # ... before the layout kernels' costs are fitted
KERNEL_COSTS = ("reorder_ms", "relu_ms", "add_ms")  # a layout calibration's ms per layout.KERNELS
RIDGE_GRID = (0.0, *np.logspace(-4, 3, 15).tolist())


def noop_spec(c: int, h: int, w: int) -> OpSpec:
    """A model that computes nothing (one Identity) on a (c, h, w) input: what one call costs."""
    return OpSpec(NOOP, c, c, h, w, 1)


def overhead_specs(ops: Sequence[OpSpec], input_shape: tuple[int, int, int]) -> list[OpSpec]:
    """The no-op probes a table needs: one per distinct op input shape, and the network's input."""
    seen: dict[str, OpSpec] = {}
    for s in [noop_spec(*input_shape), *(noop_spec(o.c_in, o.h, o.w) for o in ops)]:
        seen.setdefault(s.key, s)
    return list(seen.values())


def fit_calibration(table_sum: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """Least-squares (a, b) of measured ~= a * table_sum + b; n >= 2 distinct sums."""
    x = np.asarray(table_sum, dtype=float)
    y = np.asarray(measured, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"table sums {x.shape} and measurements {y.shape} must be 1-D of one length")
    if x.size < MIN_CALIBRATION or np.ptp(x) == 0:
        raise HwnasError(f"calibration needs at least {MIN_CALIBRATION} architectures with different table sums, "
                         f"got {x.size}; pass calibrate=10 or more")
    design = np.stack([x, np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(b)


def fit_linear_positive(table_sum, measured, s_min: float, floor: float) -> dict:
    """Least squares measured ~= a * sum + b constrained so that no architecture of the space is
    predicted below `floor` (> 0): a >= 1e-6 and a * s_min + b >= floor, where `s_min` is the
    smallest table sum over the whole space. Fitted as pred = a * (sum - s_min) + c with bounds
    a >= 1e-6, c >= floor (scipy's bounded least squares); equals the plain fit where that one
    already obeys them."""
    from scipy.optimize import lsq_linear

    x = np.asarray(table_sum, dtype=float)
    y = np.asarray(measured, dtype=float)
    fit_calibration(x, y)  # the same checks
    res = lsq_linear(np.column_stack([x - s_min, np.ones_like(x)]), y,
                     bounds=([1e-6, floor], [np.inf, np.inf]), method="bvls")
    a, c = (float(v) for v in res.x)
    return {"mode": "linear", "a": a, "b": c - a * s_min}


def _ridge(S, X, y, lam: float) -> np.ndarray:
    """theta = (a, d_1..d_C, b) minimising |y - a S - X d - b|^2 + lam |d|^2."""
    D = np.column_stack([S, X, np.ones_like(S)])
    pen = np.zeros(D.shape[1])
    pen[1:-1] = lam
    return np.linalg.lstsq(np.vstack([D, np.diag(np.sqrt(pen))]), np.r_[y, np.zeros(D.shape[1])], rcond=None)[0]


def _ridge_cv(S, X, y, lambdas: Sequence[float]) -> tuple[np.ndarray, float, float]:
    """Ridge fit of measured ~= a*S + X @ d + b, d penalised, lambda by leave-one-out CV (mean
    relative error) over `lambdas`, on latencies divided by their mean (so lambda is scale-free).
    Returns (theta = (a, d..., b) in ms units, lambda, CV MAPE %)."""
    scale = float(np.mean(y))
    Sn, Xn, yn = S / scale, X / scale, y / scale
    D = np.column_stack([Sn, Xn, np.ones_like(Sn)])

    def loo(lam: float) -> float:
        # Exact leave-one-out residuals of a penalised least-squares fit without n refits: e_i / (1 - h_ii),
        # h the hat matrix D (D'D + P)^+ D' (seconds less for hundreds of architectures and features).
        pen = np.zeros(D.shape[1])
        pen[1:-1] = lam
        inv = np.linalg.pinv(D.T @ D + np.diag(pen))
        free = 1 - np.einsum("ij,jk,ik->i", D, inv, D)
        err = np.abs(yn - D @ (inv @ D.T @ yn))
        ok = free > 1e-9
        err[ok] /= free[ok]
        for i in np.flatnonzero(~ok):  # a point only it explains (h_ii = 1): refit without it
            keep = np.arange(len(yn)) != i
            err[i] = abs(D[i] @ _ridge(Sn[keep], Xn[keep], yn[keep], lam) - yn[i])
        return float(np.mean(err / yn))

    scores = [loo(lam) for lam in lambdas]
    lam = float(lambdas[int(np.argmin(scores))])
    th = _ridge(Sn, Xn, yn, lam)
    th[-1] *= scale  # a and d multiply ms-valued features: unchanged by the scaling; b is in ms
    return th, lam, 100 * min(scores)


def _linear_fallback(S, y, min_points: int) -> dict:
    a, b = fit_calibration(S, y)
    return {"mode": "linear", "a": a, "b": b, "fallback": f"{S.size} calibration architectures < {min_points}: linear fit"}


def fit_per_op(table_sum, class_costs, measured, classes: Sequence[str] = PER_OP_CLASSES,
               lambdas: Sequence[float] = RIDGE_GRID, min_points: int = MIN_PER_OP) -> dict:
    """Per-op-class calibration: measured ~= a * sum + sum_c d_c * class_costs[:, c] + b.

    `class_costs` (n, C): each architecture's table cost of the ops of class c. The d_c are
    ridge-penalised toward 0 (lambda by leave-one-out CV over `lambdas`, on latencies divided by
    their mean); below `min_points` architectures it is the linear fit. Returns the calibration
    dict a LatencyModel applies: mode, a, b, factors {class: a + d_c}, lambda, cv_mape_pct.
    """
    S = np.asarray(table_sum, dtype=float)
    X = np.asarray(class_costs, dtype=float).reshape(len(S), len(classes))
    y = np.asarray(measured, dtype=float)
    fit_calibration(S, y)  # the same checks
    if S.size < min_points:
        return _linear_fallback(S, y, min_points)
    th, lam, cv = _ridge_cv(S, X, y, lambdas)
    a = float(th[0])
    return {"mode": "per_op", "a": a, "b": float(th[-1]), "factors": {c: a + float(d) for c, d in zip(classes, th[1:-1])},
            "lambda": lam, "cv_mape_pct": cv}


def kernel_matrix(kernels, n: int) -> np.ndarray:
    """(n, 3) counts of the kernels a layout calibration prices (layout.KERNELS); an (n,) array is the
    layout conversions alone (tables and callers before the ReLU and Add counts)."""
    K = np.asarray(kernels, dtype=float)
    if K.ndim == 1:
        K = np.column_stack([K, np.zeros((len(K), len(KERNEL_COSTS) - 1))])
    return K.reshape(n, len(KERNEL_COSTS))


def kernel_costs(cal: dict) -> np.ndarray:
    """(3,) ms per kernel of a layout calibration (older tables priced conversions only)."""
    return np.array([float(cal.get(k, 0.0)) for k in KERNEL_COSTS])


def calibration_terms(cal: dict) -> str:
    """The calibration's terms beyond a * sum + b, for a log line: per-class factors, per-kernel costs."""
    names = {"reorder_ms": "layout conversion", "relu_ms": "unfused ReLU", "add_ms": "unfused Add"}
    return ("".join(f", {c} x{f:.3f}" for c, f in (cal.get("factors") or {}).items())
            + "".join(f", {1000 * cal[k]:.2f} us per {name}" for k, name in names.items()
                      if k in cal and (k == "reorder_ms" or cal[k])))


def fit_layout(table_sum, kernels, measured, lambdas: Sequence[float] = RIDGE_GRID,
               min_points: int = MIN_LAYOUT) -> dict:
    """Layout calibration: measured ~= a * sum + K @ c + b, K the kernels onnxruntime runs that no
    table entry prices (layout conversions, unfused ReLUs, unfused Adds: layout.runtime_kernels).

    The costs c (ms per kernel) are ridge-penalised toward 0 like fit_per_op's d_c (lambda by
    leave-one-out CV); a kernel cannot take negative time, so one whose cost comes out < 0 is
    dropped and the rest refitted. Below `min_points` architectures it is the linear fit."""
    S = np.asarray(table_sum, dtype=float)
    K = kernel_matrix(kernels, len(S))
    y = np.asarray(measured, dtype=float)
    fit_calibration(S, y)
    if S.size < min_points:
        return _linear_fallback(S, y, min_points)
    unit = np.maximum(K.max(axis=0), 1.0)  # penalise each cost by its share of the latency, not per kernel
    keep = [j for j in range(K.shape[1]) if np.ptp(K[:, j]) > 0]
    while True:
        th, lam, cv = _ridge_cv(S, K[:, keep] / unit[keep], y, lambdas)
        costs = th[1:-1] / unit[keep]
        if not keep or costs.min() >= 0:
            break
        keep.pop(int(np.argmin(costs)))
    out = dict.fromkeys(KERNEL_COSTS, 0.0) | {k: float(c) for k, c in zip([KERNEL_COSTS[j] for j in keep], costs)}
    return {"mode": "layout", "a": float(th[0]), "b": float(th[-1]), **out,
            "feature": "onnxruntime's kernels no table entry prices: NCHWc layout conversions, ReLUs and Adds "
                       "not fused into a convolution (hwnas/latency/layout.py)",
            "lambda": lam, "cv_mape_pct": cv}


def fit(mode: str, table_sum, class_costs, measured, kernels=None, classes: Sequence[str] | None = None) -> dict:
    """The calibration dict of `mode` (linear | per_op | layout) fitted on these architectures
    (per_op: `class_costs` columns are `classes`, default NB-201's PER_OP_CLASSES)."""
    if mode not in CALIBRATIONS:
        raise HwnasError(f"calibration={mode!r}: use one of {', '.join(CALIBRATIONS)}")
    if mode == "per_op":
        classes = PER_OP_CLASSES if classes is None else tuple(classes)
        if not classes:  # a space with no op classes: per-class factors are the linear fit
            return _linear_fallback(np.asarray(table_sum, float), np.asarray(measured, float), 0) | {
                "fallback": "the space has no op classes: linear fit"}
        return fit_per_op(table_sum, class_costs, measured, classes)
    if mode == "layout":
        if kernels is None:
            raise HwnasError("calibration=layout needs the runtime kernel counts of the architectures")
        return fit_layout(table_sum, kernels, measured)
    a, b = fit_calibration(table_sum, measured)
    return {"mode": "linear", "a": a, "b": b}


def apply_calibration(cal: dict, table_sum, class_costs=None, classes: Sequence[str] | None = None,
                      kernels=None) -> np.ndarray:
    """Calibrated latencies from table sums (per_op also needs the (n, C) class costs, layout the
    (n, 3) runtime kernel counts). The class columns are `classes`, by default the calibration's
    own factor order (fit_per_op stores them in column order)."""
    pred = float(cal["a"]) * np.asarray(table_sum, dtype=float) + float(cal["b"])
    if cal.get("mode") == "layout":
        pred = pred + kernel_matrix(kernels, len(pred)) @ kernel_costs(cal)
    factors = cal.get("factors") or {}
    classes = tuple(factors) if classes is None else classes
    if cal.get("mode", "linear") == "per_op" and factors:
        X = np.asarray(class_costs, dtype=float).reshape(len(pred), len(classes))
        pred = pred + X @ np.array([factors.get(c, cal["a"]) - cal["a"] for c in classes])
    return pred


def _is_nb201(space) -> bool:
    """NB-201's cell structure allows the vectorised paths (one gather per edge op, layout counts)."""
    from hwnas.spaces.nb201 import NB201Space

    return isinstance(space, NB201Space)


def _digits(code: int) -> np.ndarray:
    from hwnas.spaces.nb201 import N_EDGES, N_OPS

    return (int(code) // N_OPS ** np.arange(N_EDGES)) % N_OPS


def layout_applies(space, fingerprint: dict | None = None) -> bool:
    """Whether the layout calibration's feature describes this space (and, given a table's
    fingerprint, its runtime): NAS-Bench-201 cells under onnxruntime CPU at graph_optimization=all."""
    if not _is_nb201(space):
        return False
    if fingerprint is None:
        return True
    return fingerprint.get("runner") == "ort_cpu" and fingerprint.get("graph_optimization") == "all"


def table_sum_rule(space, fingerprint: dict) -> str:
    """The table-sum rule a new calibration of this space and runtime uses: `distinct` where the
    runtime merges an NB-201 cell's identical weight-free ops (shared_ops.py), else `all`."""
    return sum_rule(fingerprint) if _is_nb201(space) else "all"


def resolve_mode(mode: str, space, fingerprint: dict) -> str:
    """`auto` -> layout where it applies (layout_applies), else per_op; other modes unchanged."""
    if mode == "auto":
        return "layout" if layout_applies(space, fingerprint) else "per_op"
    if mode not in CALIBRATIONS:
        raise HwnasError(f"calibration={mode!r}: use auto or one of {', '.join(CALIBRATIONS)}")
    return mode


@functools.lru_cache(maxsize=2)
def _space_kernels(cells_per_stage: int) -> np.ndarray:
    """(15625, 3) runtime kernel counts of every NB-201 cell, indexed by code (seconds: once per process)."""
    from hwnas.latency.layout import kernels_of_vectors
    from hwnas.spaces.nb201 import N_EDGES, N_OPS

    digits = (np.arange(N_OPS ** N_EDGES)[:, None] // N_OPS ** np.arange(N_EDGES)) % N_OPS
    return kernels_of_vectors(digits, cells_per_stage)


class LatencyModel:
    """Predicts latency (ms) of architectures of `space` on `dataset` from a LatencyTable."""

    def __init__(self, table: LatencyTable, space: SearchSpace, dataset: str, sum_rule: str | None = None):
        """`sum_rule`: how the table sum prices an NB-201 cell (hwnas/latency/shared_ops.py): `all`
        listed ops or the `distinct` ones the runtime runs; default the one the table was calibrated
        with (`all` for tables older than the rule)."""
        self.table, self.space, self.dataset = table, require_profilable(space, "a latency table"), dataset
        cal = table.calibration or {}
        self.sum_rule = sum_rule or cal.get("table_sum", "all")
        if self.sum_rule not in SUM_RULES:
            raise HwnasError(f"sum_rule={self.sum_rule!r}: use one of {', '.join(SUM_RULES)}")
        self._fold = folds(table.fingerprint)
        self.a, self.b = (float(cal["a"]), float(cal["b"])) if "a" in cal else (1.0, 0.0)
        self.calibrated = "a" in cal
        # Old tables store only (a, b): linear. per_op adds per-class factors, layout a cost per
        # layout conversion (and per unfused ReLU and Add).
        self.mode = cal.get("mode", "linear") if self.calibrated else "none"
        self.factors = {c: float(f) for c, f in (cal.get("factors") or {}).items()} if self.mode == "per_op" else {}
        self.classes = tuple(self.factors) or tuple(space.calibration_classes)
        self.kernel_ms = kernel_costs(cal) if self.mode == "layout" else np.zeros(len(KERNEL_COSTS))
        if self.mode == "layout" and not layout_applies(space):
            raise DataError(f"latency table {table.path} has a layout calibration, which counts onnxruntime's layout "
                            f"conversions in NAS-Bench-201 networks; space {space.name!r} has none: re-run "
                            f"hwnas-profile recalibrate=true calibration=per_op")
        if self.calibrated:
            low = self.min_prediction()
            if low is not None and low[0] <= 0:
                from hwnas.latency.table import FIX_HINT

                arch = self.space.from_vector(_digits(low[1]))  # min_prediction enumerates NB-201 only
                raise DataError(f"{table.path} is not a valid hwnas latency table (its calibration predicts "
                                f"{low[0]:.4g} ms for {arch}: a latency must be > 0); re-run hwnas-profile "
                                f"device={table.device} recalibrate=true to refit it, or {FIX_HINT}")

    @property
    def calibration(self) -> dict:
        """What predict applies: mode, a, b (and per-class factors)."""
        out = {"mode": self.mode, "a": self.a, "b": self.b}
        if self.sum_rule != "all":  # older tables have no rule: `all`
            out["table_sum"] = self.sum_rule
        if self.factors:
            out["factors"] = dict(self.factors)
        if self.mode == "layout":
            out.update(zip(KERNEL_COSTS, self.kernel_ms.tolist()))
        return out

    def space_features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(digits (n, 6), table sums (n,), class costs (n, C)) of EVERY architecture of an NB-201
        space (all 5^6 codes: no benchmark data needed), or None for a space that cannot be
        enumerated this way."""
        if not _is_nb201(self.space):
            return None
        from hwnas.spaces.nb201 import N_EDGES, N_OPS

        digits = (np.arange(N_OPS ** N_EDGES)[:, None] // N_OPS ** np.arange(N_EDGES)) % N_OPS
        return digits, *self._nb201_costs(digits)

    def min_prediction(self, cal: dict | None = None) -> tuple[float, int] | None:
        """(smallest prediction over the whole space, its code) of calibration `cal` (default: the
        table's), or None where the space cannot be enumerated. Layout: the kernel counts are >= 0,
        so with costs >= 0 the bound without them is checked first and the exact counts (seconds:
        cached per process) only computed when that bound is not already positive."""
        feats = self.space_features()
        if feats is None:
            return None
        digits, sums, classes = feats
        cal = self.calibration if cal is None else cal
        if "a" not in cal:
            pred = sums + 0.0
        else:
            pred = apply_calibration({**cal, "mode": "linear" if cal.get("mode") == "layout" else cal.get("mode", "linear")},
                                     sums, classes, self.classes)
        if cal.get("mode") == "layout":
            costs = kernel_costs(cal)
            if costs.min() < 0 or pred.min() <= 0:
                pred = pred + _space_kernels(getattr(self.space, "cells_per_stage", 5)) @ costs
        i = int(np.argmin(pred))
        return float(pred[i]), i

    def runtime_kernels(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n, 3) kernels onnxruntime's CPU optimiser runs in each arch's network that no table entry
        prices: layout conversions, unfused ReLUs, unfused Adds (hwnas/latency/layout.py)."""
        from hwnas.latency.layout import kernels_of_vectors

        if len(archs) == 0:
            return np.zeros((0, len(KERNEL_COSTS)))
        return kernels_of_vectors(np.stack([self.space.to_vector(a) for a in archs]),
                                  getattr(self.space, "cells_per_stage", 5))

    def _median(self, spec) -> float:
        if spec.key not in self.table.entries:
            width = (self.space.channels, self.space.cells_per_stage) if _is_nb201(self.space) else (16, 5)
            if width != (16, 5):  # hwnas-profile has no width options: re-running it would measure nothing new
                raise DataError(
                    f"latency table {self.table.path} has no entry for operation {spec.key} (space {self.space.name} "
                    f"at channels={width[0]}, cells_per_stage={width[1]}): hwnas-profile tables cover the "
                    f"NAS-Bench-201 default width (C=16, N=5) only, so re-running it measures nothing new; search "
                    f"at the default width, or time whole networks at this width (python -m hwnas.profiling.measure "
                    f"--channels {width[0]} --cells {width[1]}) and use device=fitted")
            raise DataError(f"latency table {self.table.path} has no entry for operation {spec.key} "
                            f"(space {self.space.name}, dataset {self.dataset}); re-run hwnas-profile "
                            f"device={self.table.device} space={self.space.name} dataset={self.dataset} to measure it")
        return self.table.median(spec.key)

    def _cost(self, spec) -> float:
        """The op's own time inside a graph: its marginal cost in a chain of copies where measured,
        else its median less the per-call overhead on its input where that was probed."""
        entry = self.table.entries.get(spec.key)
        if entry is not None and "marginal_ms" in entry:
            return float(entry["marginal_ms"])
        probe = noop_spec(spec.c_in, spec.h, spec.w).key
        if probe not in self.table.entries:
            return self._median(spec)
        return max(self._median(spec) - self.table.median(probe), 0.0)

    def _call_overhead(self) -> float:
        probe = noop_spec(*self.space.input_shape(self.dataset)).key
        return self.table.median(probe) if probe in self.table.entries else 0.0

    def table_sum(self, archs: Sequence[Arch]) -> np.ndarray:
        """Uncalibrated sum of operation latencies, shape (n,)."""
        if _is_nb201(self.space):
            if len(archs) == 0:
                return np.zeros(0)
            return self._nb201_costs(np.stack([self.space.to_vector(a) for a in archs]))[0]
        base = self._call_overhead()
        return np.array([base + sum(self._cost(s) for s in self.space.ops(a, self.dataset)) for a in archs])

    def class_costs(self, archs: Sequence[Arch], classes: Sequence[str] | None = None) -> np.ndarray:
        """(n, C): each arch's summed table cost of the ops of each class (by op name)."""
        classes = tuple(classes or self.classes)
        if len(archs) == 0:
            return np.zeros((0, len(classes)))
        if _is_nb201(self.space):
            return self._nb201_costs(np.stack([self.space.to_vector(a) for a in archs]), classes)[1]
        out = np.zeros((len(archs), len(classes)))
        col = {c: i for i, c in enumerate(classes)}
        for n, a in enumerate(archs):
            for s in self.space.ops(a, self.dataset):
                i = col.get(self.space.op_class(s))
                if i is not None:
                    out[n, i] += self._cost(s)
        return out

    def _edge_counts(self, digits: np.ndarray) -> np.ndarray:
        """(n, 5): how many edges of each NB-201 architecture (op ids (n, 6)) run each op: all of
        them, or under the `distinct` rule less those the runtime merges (shared_ops.py)."""
        from hwnas.spaces.nb201 import N_OPS

        counts = np.stack([(digits == o).sum(axis=1) for o in range(N_OPS)], axis=1).astype(float)
        return counts - merged_edges(digits, self._fold) if self.sum_rule == "distinct" else counts

    def _nb201_costs(self, digits: np.ndarray, classes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(table sums (n,), class costs (n, C)) of NB-201 architectures given as op ids (n, 6)."""
        from hwnas.spaces.nb201_net import OPS

        fixed, edge = self._edge_costs()
        counts = self._edge_counts(digits)
        classes = tuple(self.classes if classes is None else classes)
        cls = np.zeros((len(digits), len(classes)))
        for j, c in enumerate(classes):
            if c in OPS:  # fixed layers are never a listed class (their op names are stem/add/reduction/head)
                cls[:, j] = counts[:, OPS.index(c)] * edge[OPS.index(c)]
        return fixed + counts @ edge, cls

    def _edge_costs(self) -> tuple[float, np.ndarray]:
        """(cost of the fixed layers, cost of one edge per op id): prices a cell space in one gather."""
        from hwnas.spaces.nb201_net import OPS

        fixed, per_edge = self.space.ops_decomposition(self.dataset)
        return (self._call_overhead() + sum(self._cost(s) for s in fixed),
                np.array([sum(self._cost(s) for s in per_edge[name]) for name in OPS]))

    def apply(self, table_sum: np.ndarray, class_costs: np.ndarray | None = None,
              kernels: np.ndarray | None = None) -> np.ndarray:
        """The stored calibration on table sums (per_op also needs the (n, C) class costs, layout
        the (n, 3) runtime kernel counts)."""
        if self.mode == "layout":
            if kernels is None:
                raise ValueError("a layout calibration needs the runtime kernel counts of the architectures")
            return apply_calibration(self.calibration, table_sum, kernels=kernels)
        if self.factors:
            if class_costs is None:
                raise ValueError("a per_op calibration needs the class costs of the architectures")
            return apply_calibration(self.calibration, table_sum, class_costs, self.classes)
        return self.a * np.asarray(table_sum, dtype=float) + self.b

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """Calibrated latency (ms) of each arch (the raw sum when the table has no calibration)."""
        return self.apply(self.table_sum(archs), self.class_costs(archs) if self.factors else None,
                          self.runtime_kernels(archs) if self.mode == "layout" else None)

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        """NB-201 only: calibrated latency of architectures given by their base-5 codes (vectorised)."""
        from hwnas.spaces.nb201 import N_EDGES, N_OPS
        from hwnas.spaces.nb201_net import OPS

        fixed, edge = self._edge_costs()
        digits = (np.asarray(codes, dtype=np.int64)[:, None] // N_OPS ** np.arange(N_EDGES)) % N_OPS
        # per_op: each edge op priced at its class factor, the rest at a (same as apply, one gather)
        eff = self.a * edge + np.array([(self.factors.get(o, self.a) - self.a) * edge[i] for i, o in enumerate(OPS)])
        out = self.a * fixed + self._edge_counts(digits) @ eff + self.b
        if self.mode == "layout":
            from hwnas.latency.layout import kernels_of_vectors

            out = out + kernels_of_vectors(digits, getattr(self.space, "cells_per_stage", 5)) @ self.kernel_ms
        return out
