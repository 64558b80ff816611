"""Helpers shared by the generative searchers (GA-NAS, AG-Net); registers no searcher.

Everything here is deterministic given its inputs and an explicit seed or generator: the
search loop resumes by replaying history through ask/tell, so no global RNG is touched.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Sequence

import numpy as np
import torch

from hwnas.pareto import crowding_distance, nd_ranks
from hwnas.problem import Evaluation, SearchProblem
from hwnas.searchers.base import Searcher
from hwnas.spaces.base import Arch


def vectors_to_onehot(X: torch.Tensor, cards: Sequence[int]) -> torch.Tensor:
    """n x len(cards) long tensor of choices -> n x sum(cards) one-hot float tensor."""
    parts = [torch.nn.functional.one_hot(X[:, i], c).float() for i, c in enumerate(cards)]
    return torch.cat(parts, dim=1)


def rank_order(evals: Sequence[Evaluation], objective: str = "pareto") -> list[int]:
    """Positions of the feasible evaluations, best first.

    pareto: non-dominated rank on (error, latency[, energy]), then crowding distance (spread
    along the front), then error. accuracy: by error alone (the papers' single-objective
    setting; the budget still holds, since infeasible evaluations are left out: they must
    never count as good examples).
    """
    feas = [i for i, e in enumerate(evals) if e.feasible]
    if not feas:
        return []
    if objective == "accuracy":
        return sorted(feas, key=lambda i: (evals[i].error, str(evals[i].arch)))
    F = np.array([evals[i].objectives() for i in feas], dtype=float)
    ranks = nd_ranks(F)
    crowd = np.zeros(len(feas))
    for r in np.unique(ranks):
        sel = np.nonzero(ranks == r)[0]
        crowd[sel] = crowding_distance(F[sel])
    # Stable, fully ordered key (the arch string breaks the last ties) so replays agree.
    key = sorted(range(len(feas)), key=lambda k: (ranks[k], -crowd[k], F[k, 0], str(evals[feas[k]].arch)))
    return [feas[k] for k in key]




class WorthCache:
    """problem.worth_querying with a per-arch memo (latency and connectivity are free but not instant)."""

    def __init__(self, problem: SearchProblem):
        self.problem = problem
        self._memo: dict[Arch, bool] = {}

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        todo = list(dict.fromkeys(a for a in archs if a not in self._memo))
        if todo:
            for a, ok in zip(todo, self.problem.worth_querying(todo)):
                self._memo[a] = bool(ok)
        return np.fromiter((self._memo[a] for a in archs), dtype=bool, count=len(archs))


class BatchSearcher(Searcher):
    """A searcher that starts from `config.n_init` random feasible architectures, then proposes
    `config.batch_size` at a time from what it learned (`_iterate`); it keeps every evaluation."""

    def __init__(self, problem, config, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.evals: list[Evaluation] = []
        self.seen: set[Arch] = set()

    def ask(self) -> list[Arch]:
        c = self.config
        if len(self.evals) < c.n_init or not any(e.feasible for e in self.evals):
            batch: list[Arch] = []
            for _ in range(c.n_init if not self.evals else c.batch_size):
                a = self.sample_feasible(self.seen | set(batch))
                if a in self.seen or a in batch:
                    break  # the feasible space is exhausted
                batch.append(a)
        else:
            batch = self._iterate()
        self.seen.update(batch)
        return batch

    def tell(self, evaluations: list[Evaluation]) -> None:
        self.evals.extend(evaluations)
        self.seen.update(e.arch for e in evaluations)

    @abstractmethod
    def _iterate(self) -> list[Arch]:
        """One learned iteration: the next batch of new architectures worth querying."""
