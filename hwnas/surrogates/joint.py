"""Joint accuracy-latency surrogate: a learned error posterior plus the free latency table.

Only accuracy costs queries, so only the error is predicted (an `EnsembleSurrogate` on the
space's encoding); latency, energy and feasibility come from the problem exactly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.problem import Evaluation, SearchProblem
from hwnas.spaces.base import Arch
from hwnas.surrogates.acquisition import (
    expected_improvement,
    hv_improvement,
    mask_infeasible,
)
from hwnas.surrogates.ensemble import EnsembleSurrogate


class JointSurrogate:
    def __init__(self, problem: SearchProblem, seed: int = 0, encoding: str = "onehot",
                 n_samples: int = 64, **ensemble_kw):
        self.problem = problem
        self.encoding = encoding
        self.seed = int(seed)
        self.n_samples = int(n_samples)
        self.model = EnsembleSurrogate(seed=seed, **ensemble_kw)
        self._fitted_on: tuple | None = None

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """n x d encoding of `archs`."""
        space = self.problem.space
        return np.stack([space.encode(a, self.encoding) for a in archs]).astype(np.float32)

    def fit(self, evaluated: Sequence[Evaluation]) -> "JointSurrogate":
        """Fit the error model on every evaluation (error does not depend on feasibility)."""
        key = tuple(str(ev.arch) for ev in evaluated)
        if key != self._fitted_on:  # refit only when the evaluated set changed
            self.model.fit(self.encode([ev.arch for ev in evaluated]),
                           np.array([ev.error for ev in evaluated], dtype=float))
            self._fitted_on = key
        return self

    def predict(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """dict(mean_err, std_err, latency_ms, feasible[, energy_mj]), each (n,)."""
        archs = list(archs)
        mean, std = self.model.predict(self.encode(archs))
        out = dict(mean_err=mean, std_err=std, latency_ms=self.problem.latency(archs),
                   feasible=self.problem.worth_querying(archs))
        if self.problem.use_energy:
            out["energy_mj"] = self.problem.energy(archs)
        return out

    def reference(self, evaluated: Sequence[Evaluation]) -> tuple[np.ndarray, np.ndarray]:
        """(lo, ref) used to normalise objectives: error between the best and the median
        evaluated (the README's "Scoring a front" scores fronts against the median too),
        latency/energy between the smallest seen and the budget (or the largest seen)."""
        F = np.array([ev.objectives() for ev in evaluated], dtype=float)
        lo = F.min(axis=0)
        hi = F.max(axis=0)
        hi[0] = max(float(np.median(F[:, 0])), lo[0] + 1e-6)
        budgets = [self.problem.latency_budget, self.problem.energy_budget]
        for k in range(1, F.shape[1]):
            if budgets[k - 1] is not None:
                hi[k] = budgets[k - 1]
        return lo, np.maximum(hi, lo + 1e-9)

    def score(self, archs: Sequence[Arch], evaluated: Sequence[Evaluation], kind: str = "ehvi",
              rng: np.random.Generator | None = None, fit: bool = True) -> np.ndarray:
        """Acquisition value (n,) of `archs` given `evaluated`; not worth querying -> -inf.

        ehvi: expected hypervolume improvement over the evaluated feasible front, objectives
        normalised by `reference`, reference point 1.1 (a little beyond, so edge points count).
        ei: expected improvement of error over the best feasible evaluated error.
        fit=False scores with the model as last fitted (e.g. refitted only every k queries).
        """
        if not evaluated:
            raise ValueError("JointSurrogate.score needs at least one evaluation")
        if fit or not self.model.fitted:
            self.fit(evaluated)
        pred = self.predict(archs)
        feas_ev = [ev for ev in evaluated if ev.feasible] or list(evaluated)
        if kind == "ei":
            best = min(ev.error for ev in feas_ev)
            return mask_infeasible(expected_improvement(pred["mean_err"], pred["std_err"], best),
                                   pred["feasible"])
        if kind != "ehvi":
            raise ValueError(f"unknown acquisition kind {kind!r}; valid: ehvi, ei")
        lo, hi = self.reference(evaluated)
        scale = hi - lo
        known = [pred["latency_ms"]] + ([pred["energy_mj"]] if "energy_mj" in pred else [])
        known = (np.stack(known, axis=1) - lo[1:]) / scale[1:]
        front = (np.array([ev.objectives() for ev in feas_ev], dtype=float) - lo) / scale
        rng = rng if rng is not None else np.random.default_rng([self.seed, len(evaluated)])
        hvi = hv_improvement((pred["mean_err"] - lo[0]) / scale[0], pred["std_err"] / scale[0], known,
                             front, np.full(len(lo), 1.1), self.n_samples, rng)
        return mask_infeasible(hvi, pred["feasible"])
