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
call's overhead (the no-op on the network input) is added back once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.errors import DataError, HwnasError
from hwnas.profiling.table import LatencyTable
from hwnas.spaces.base import Arch, OpSpec, SearchSpace

MIN_CALIBRATION = 2  # two parameters
NOOP = "noop"


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


class LatencyModel:
    """Predicts latency (ms) of architectures of `space` on `dataset` from a LatencyTable."""

    def __init__(self, table: LatencyTable, space: SearchSpace, dataset: str):
        self.table, self.space, self.dataset = table, space, dataset
        cal = table.calibration or {}
        self.a, self.b = (float(cal["a"]), float(cal["b"])) if "a" in cal else (1.0, 0.0)
        self.calibrated = "a" in cal

    def _median(self, spec) -> float:
        if spec.key not in self.table.entries:
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
        if hasattr(self.space, "ops_decomposition") and hasattr(self.space, "to_vector"):
            fixed, edge = self._edge_costs()
            if len(archs) == 0:
                return np.zeros(0)
            vec = np.stack([self.space.to_vector(a) for a in archs])
            return fixed + edge[vec].sum(axis=1)
        base = self._call_overhead()
        return np.array([base + sum(self._cost(s) for s in self.space.ops(a, self.dataset)) for a in archs])

    def _edge_costs(self) -> tuple[float, np.ndarray]:
        """(cost of the fixed layers, cost of one edge per op id): prices a cell space in one gather."""
        from hwnas.spaces.nb201_net import OPS

        fixed, per_edge = self.space.ops_decomposition(self.dataset)
        return (self._call_overhead() + sum(self._cost(s) for s in fixed),
                np.array([sum(self._cost(s) for s in per_edge[name]) for name in OPS]))

    def apply(self, table_sum: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(table_sum, dtype=float) + self.b

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """Calibrated latency (ms) of each arch (the raw sum when the table has no calibration)."""
        return self.apply(self.table_sum(archs))

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        """NB-201 only: calibrated latency of architectures given by their base-5 codes (vectorised)."""
        from hwnas.spaces.nb201 import N_EDGES, N_OPS

        fixed, edge = self._edge_costs()
        digits = (np.asarray(codes, dtype=np.int64)[:, None] // N_OPS ** np.arange(N_EDGES)) % N_OPS
        return self.apply(fixed + edge[digits].sum(axis=1))
