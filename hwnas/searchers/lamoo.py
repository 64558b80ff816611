"""LaMOO (Zhao et al., ICLR 2022; "Multi-objective NAS by learning search space partitions",
2024): LaNAS's tree, split on the dominance number, with qLogNEHVI inside the chosen region.

The tree, MCTS descent and in-region sampling are LaNAS's (hwnas/searchers/lanas.py); what
changes is what "good" means. At each node the samples' *dominance numbers* are counted
within the node (how many of the node's feasible samples dominate each one on (error,
latency[, energy]); infeasible samples count as dominated by all) and the linear classifier
separates the half with the lowest dominance number (ties: error, then query order) from the
rest. A node's value in UCB is the hypervolume of its feasible samples, normalised to [0, 1]
(error from the best seen to the reference error, latency and energy from the fastest
reference architecture to the budget), as LaMOO scores regions. The classifier is LaNAS's
L2-regularised logistic split rather than the paper's SVM (both are linear on the encoding).

Inside the chosen leaf, `inner: qnehvi` fits the GP on every evaluation and picks
`batch_size` of up to `n_candidates` in-region candidates by qLogNEHVI (latency known for
free, hwnas/searchers/_botorch.py); `inner: random` takes a uniform draw of the region.

Deterministic: a function of the seed and the told evaluations.
"""
from __future__ import annotations

import numpy as np

from hwnas.pareto import hypervolume
from hwnas.searchers._botorch import (
    KnownObjectives,
    QNEHVIPicker,
    QNEHVISettings,
    error_reference,
)
from hwnas.searchers.base import register_searcher
from hwnas.searchers.configs import LaMOOConfig
from hwnas.searchers.lanas import LaNAS
from hwnas.searchers.mobo import N_REFERENCE
from hwnas.spaces.base import Arch, sample_distinct


def dominance_numbers(F: np.ndarray) -> np.ndarray:
    """(n,) how many rows of F (n x m, minimised) dominate each row."""
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)  # le[j, i]: j no worse than i everywhere
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    return (le & lt).sum(axis=0)


@register_searcher("lamoo", LaMOOConfig)
class LaMOO(LaNAS):
    def _init_chooser(self) -> None:
        c = self.config
        ref = self.pool if self.pool is not None else sample_distinct(self.space, N_REFERENCE, self.seed)
        self.known = KnownObjectives(self.problem, ref)
        self.picker = None
        if c.inner == "qnehvi":
            self.picker = QNEHVIPicker(self.problem, self.known,
                                       QNEHVISettings(c.batch_size, c.mc_samples, c.fit_iters, c.kernel, c.n_screen,
                                                      c.baseline_layers, c.warm_start),
                                       self.seed, c.n_init, self.progress, "lamoo")

    def _n_wanted(self, k: int) -> int:
        return self.config.n_candidates if self.picker is not None else k

    # --- dominance-number split, hypervolume values ------------------------------------------
    def _prepare_scores(self) -> None:
        """Normalised objectives of every sample (reference point at 1) and feasibility."""
        self._feas = np.array([ev.feasible for ev in self.evals], dtype=bool)
        self._err = np.array([ev.error for ev in self.evals], dtype=float)
        e_ref = error_reference(self.evals, self.config.n_init)
        e_lo = float(self._err[self._feas].min()) if self._feas.any() else 0.0
        err_n = (self._err - e_lo) / max(e_ref - e_lo, 1e-9)
        self._F = np.hstack([err_n[:, None], self.known([ev.arch for ev in self.evals])])

    def _node_value(self, idx: np.ndarray) -> float:
        idx = idx[self._feas[idx]] if len(idx) else idx
        if not len(idx):
            return 0.0
        return hypervolume(self._F[idx], np.ones(self._F.shape[1]))

    def _good_labels(self, idx: np.ndarray) -> np.ndarray | None:
        dom = np.full(len(idx), len(idx), dtype=float)  # infeasible: dominated by all
        feas = self._feas[idx]
        if feas.any():
            dom[feas] = dominance_numbers(self._F[idx[feas]])
        if np.all(dom == dom[0]):
            return None  # nothing to separate
        order = np.lexsort((idx, self._err[idx], dom))
        labels = np.zeros(len(idx))
        labels[order[: len(idx) // 2]] = 1.0
        return labels

    def utilities(self) -> np.ndarray:
        raise NotImplementedError("LaMOO scores nodes by hypervolume, not per-sample utilities")

    # --- inside the chosen leaf --------------------------------------------------------------
    def _choose(self, cands: list[Arch], k: int) -> list[Arch]:
        if self.picker is None:
            return cands[:k]  # already a uniform draw from the region
        Xc = self.pool_X[[self.pool_pos[a] for a in cands]] if self.pool is not None else None  # encoded once
        return self.picker.pick(self.evals, self.X, cands, k, Xc)
