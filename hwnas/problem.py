"""What a searcher may know for free: the space, latency/energy and the constraints.

Latency comes from a table and costs no query, so searchers use it to avoid spending
accuracy queries on architectures that break the budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from hwnas.latency.base import IndexedSource, LatencySource
from hwnas.spaces.base import Arch, SearchSpace

# Worse than any real error: a failed evaluation's when the metric has no worst value, and
# what NSGA sees for a member no query was spent on.
UNBOUNDED_WORST_ERROR = 1e3


@dataclass(frozen=True)
class Evaluation:
    """One evaluated architecture. `error` is the minimised form of `accuracy`."""

    arch: Arch
    accuracy: float
    error: float
    latency_ms: float
    energy_mj: Optional[float]
    feasible: bool
    failed: bool = False  # the evaluation crashed or timed out on every try: no accuracy

    def objectives(self) -> tuple[float, ...]:
        if self.energy_mj is None:
            return (self.error, self.latency_ms)
        return (self.error, self.latency_ms, self.energy_mj)


class SearchProblem:
    def __init__(self, space: SearchSpace, latency: LatencySource, latency_ms: float | None = None,
                 energy_mj: float | None = None, maximize: bool = True, task: str | None = None,
                 device: str | None = None, data_dir=None):
        self.space = space
        # What the accuracy is of and which device (its benchmark column when it has one), and
        # the data directory: a transfer searcher (metad2a) must never learn from these targets.
        self.task = task
        self.device = device
        self.data_dir = data_dir
        self.source = latency
        self.latency_budget = latency_ms
        self.energy_budget = energy_mj
        self.maximize = maximize
        self.use_energy = latency.has_energy
        self._pool: list[Arch] | None = None

    @property
    def n_obj(self) -> int:
        return 3 if self.use_energy else 2

    @property
    def constrained(self) -> bool:
        return self.latency_budget is not None or self.energy_budget is not None

    def error(self, accuracy: float | np.ndarray):
        """Minimised form of the metric: 100 - accuracy, or the metric when lower is better."""
        return 100.0 - accuracy if self.maximize else accuracy

    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.source.latency(archs)

    def energy(self, archs: Sequence[Arch]) -> np.ndarray | None:
        return self.source.energy(archs) if self.use_energy else None

    def violation(self, archs: Sequence[Arch]) -> np.ndarray:
        """Constraint violation (>0 infeasible), summed relative excess over each budget."""
        v = np.zeros(len(archs))
        if self.latency_budget is not None:
            v += np.maximum(self.latency(archs) / self.latency_budget - 1.0, 0.0)
        if self.energy_budget is not None and self.use_energy:
            v += np.maximum(self.energy(archs) / self.energy_budget - 1.0, 0.0)
        return v

    def feasible(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.violation(archs) <= 0.0

    def is_feasible(self, arch: Arch) -> bool:
        return bool(self.feasible([arch])[0])

    def worth_querying(self, archs: Sequence[Arch]) -> np.ndarray:
        """Feasible and not degenerate: what a searcher should spend accuracy queries on.

        Both are known for free (latency table, cell structure), so no searcher need be
        fooled by a cell without an input-output path that looks fast on every device.
        """
        ok = self.feasible(archs)
        return ok & ~np.fromiter((self.space.is_degenerate(a) for a in archs), dtype=bool, count=len(archs))

    def is_worth_querying(self, arch: Arch) -> bool:
        return bool(self.worth_querying([arch])[0])

    def feasible_pool(self) -> list[Arch] | None:
        """Every architecture worth querying, in benchmark index order, when the space is tabular."""
        if self._pool is None and isinstance(self.source, IndexedSource):
            archs = list(self.space.enumerate())
            mask = self.worth_querying(archs)
            self._pool = [a for a, ok in zip(archs, mask) if ok]
        return self._pool

    def make_evaluation(self, arch: Arch, accuracy: float) -> Evaluation:
        """An evaluation; accuracy NaN means it failed. A failed one keeps NaN as its accuracy
        (never an accuracy in any record) and is never feasible, so it joins no front; searchers
        see the worst error (0 % accuracy), which steers them away from it."""
        lat = float(self.latency([arch])[0])
        energy = float(self.energy([arch])[0]) if self.use_energy else None
        if math.isnan(accuracy):
            worst = float(self.error(0.0)) if self.maximize else UNBOUNDED_WORST_ERROR
            return Evaluation(arch, math.nan, worst, lat, energy, False, failed=True)
        return Evaluation(arch, float(accuracy), float(self.error(accuracy)), lat, energy,
                          self.is_feasible(arch))
