"""Pareto fronts and how good one is: non-dominated sorting, hypervolume, the true front.

All objectives are minimised. Shapes: `F` is n x m (n points, m objectives).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the points no other point dominates (duplicates all kept)."""
    F = np.asarray(F, dtype=float)
    n = len(F)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(F.T[::-1])  # by first objective, ties by the next
    mask = np.zeros(n, dtype=bool)
    # A point can only be dominated by one sorted before it; compare with the kept ones.
    kept = np.empty((0, F.shape[1]))
    for i in order:
        f = F[i]
        if len(kept) and np.any(np.all(kept <= f, axis=1) & np.any(kept < f, axis=1)):
            continue
        mask[i] = True
        kept = np.vstack([kept, f])
    return mask


def nd_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank of each point (0 = first front), via pymoo."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(F, return_rank=True)
    return np.asarray(rank, dtype=int)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance (n,) of the points of one front, F n x m, via pymoo's own.

    Interior points: the mean over objectives of the gap between their two neighbours,
    normalised by the front's span; the extremes of any objective get inf (so do all points
    of a front of <= 2).
    """
    from pymoo.operators.survival.rank_and_crowding.metrics import get_crowding_function

    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0)
    return np.asarray(get_crowding_function("cd").do(F), dtype=float)


def hypervolume_2d(F: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume dominated by `F` (n x 2) and bounded by `ref` (2,)."""
    F = np.asarray(F, dtype=float).reshape(-1, 2)
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    hv, best_y = 0.0, float(ref[1])
    for x, y in F:
        if y < best_y:
            hv += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(hv)


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of `F` (n x m) w.r.t. `ref` (m,): own exact sweep in 2-D, pymoo's HV in n-D."""
    F = np.asarray(F, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if F.ndim == 1:
        F = F.reshape(1, -1)
    if F.shape[1] == 2:
        return hypervolume_2d(F, ref)
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=ref)(F[non_dominated(F)]))


@dataclass
class FrontScore:
    hypervolume: float  # of the evaluated feasible points, normalised space
    hv_ratio: Optional[float]  # / hypervolume of every feasible architecture (tabular only)
    front_regret: Optional[float]  # mean regret over 10 latency budgets (tabular only)


class FrontScorer:
    """Scores a set of evaluated architectures exactly as the README's "Scoring a front" (under Job 2).

    Objectives: error (100 - accuracy, or the metric itself when lower is better), latency
    and optionally energy. Error is normalised to [best error, median error] of the space,
    latency to [smallest latency, budget or largest latency], energy likewise; the
    reference point is all ones.
    """

    def __init__(self, error: np.ndarray, latency: np.ndarray, energy: np.ndarray | None = None,
                 latency_budget: float | None = None, energy_budget: float | None = None,
                 tabular: bool = True):
        self.error = np.asarray(error, dtype=float)
        cols = [self.error, np.asarray(latency, dtype=float)]
        budgets = [None, latency_budget]
        if energy is not None:
            cols.append(np.asarray(energy, dtype=float))
            budgets.append(energy_budget)
        self.latency = cols[1]
        self.latency_budget = latency_budget
        self.F = np.stack(cols, axis=1)  # every architecture of the space, n x m
        feasible = np.ones(len(self.F), dtype=bool)
        for k, b in enumerate(budgets):
            if b is not None:
                feasible &= self.F[:, k] <= b
        self.feasible = feasible
        lo = [float(self.error.min())] + [float(c.min()) for c in cols[1:]]
        hi = [float(np.median(self.error))] + [float(b if b is not None else c.max())
                                                for c, b in zip(cols[1:], budgets[1:])]
        self.lo, self.hi = np.array(lo), np.array(hi)
        self.ref = np.ones(len(cols))
        self.tabular = tabular
        self.true_hv = self.hypervolume_of(np.nonzero(feasible)[0]) if tabular else None
        self._regret_budgets = self._budgets() if tabular else None

    def normalise(self, F: np.ndarray) -> np.ndarray:
        return (np.asarray(F, dtype=float) - self.lo) / np.maximum(self.hi - self.lo, 1e-12)

    def hypervolume_of(self, rows: np.ndarray) -> float:
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[self.feasible[rows]]
        if len(rows) == 0:
            return 0.0
        return hypervolume(self.normalise(self.F[rows]), self.ref)

    def _budgets(self) -> np.ndarray:
        lat = self.latency[self.feasible]
        return np.quantile(lat, np.linspace(0.1, 1.0, 10))

    def front_regret(self, rows: np.ndarray) -> float:
        """Mean over 10 latency budgets (10%..100% quantiles of feasible latency) of
        best accuracy in the space under the budget - best accuracy evaluated under it.

        What was evaluated under a budget counts no worse than the median architecture under
        it (as the hypervolume ignores what is worse than the median): finding nothing there,
        or only chance-level cells, costs the gap between the best and the median.
        """
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[self.feasible[rows]]
        regrets = []
        feas = np.nonzero(self.feasible)[0]
        for b in self._regret_budgets:
            pool = self.error[feas[self.latency[feas] <= b]]
            got = self.error[rows[self.latency[rows] <= b]]
            floor = float(np.median(pool))
            best_got = min(got.min(), floor) if len(got) else floor
            regrets.append(best_got - pool.min())
        return float(np.mean(regrets))

    def score(self, rows: np.ndarray) -> FrontScore:
        """`rows`: benchmark indices of the evaluated architectures."""
        hv = self.hypervolume_of(rows)
        if not self.tabular:
            return FrontScore(hv, None, None)
        ratio = hv / self.true_hv if self.true_hv > 0 else 0.0
        return FrontScore(hv, float(ratio), self.front_regret(rows))

    def true_front(self) -> np.ndarray:
        """Benchmark indices of the non-dominated feasible architectures, by latency."""
        feas = np.nonzero(self.feasible)[0]
        nd = feas[non_dominated(self.F[feas])]
        return nd[np.argsort(self.latency[nd], kind="stable")]
