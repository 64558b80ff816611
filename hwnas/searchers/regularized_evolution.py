"""Regularized (aging) evolution, Real et al. 2019, made constraint- and front-aware.

Tournament: sample `sample_size` members, the best wins; infeasible members never win over
feasible ones. With `objective: sweep` each tournament draws a latency cap between the
fastest member and the budget, and the winner is the most accurate member under it: the
population then spreads along the accuracy-latency front instead of collapsing on one point.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from hwnas.problem import Evaluation
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import RegularizedEvolutionConfig
from hwnas.spaces.base import Arch


@register_searcher("regularized_evolution", RegularizedEvolutionConfig)
class RegularizedEvolution(Searcher):
    steady_state = True

    def __init__(self, problem, config: RegularizedEvolutionConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.population: deque[Evaluation] = deque()
        self.seen: set[Arch] = set()

    def ask(self) -> list[Arch]:
        if len(self.population) < self.config.population_size:
            child = self.sample_feasible(self.seen)
        else:
            child = self._mutate(self._tournament())
        self.seen.add(child)
        return [child]

    def tell(self, evaluations: list[Evaluation]) -> None:
        for ev in evaluations:
            self.population.append(ev)
            if len(self.population) > self.config.population_size:
                self.population.popleft()  # aging: the oldest dies, not the worst

    def _tournament(self) -> Evaluation:
        members = list(self.population)
        idx = self.rng.choice(len(members), size=self.config.sample_size, replace=False)
        cands = [members[i] for i in idx]
        feasible = [c for c in cands if c.feasible]
        if not feasible:  # only then may an infeasible one win: the least violating
            return min(cands, key=lambda c: c.latency_ms)
        if self.config.objective == "sweep":
            lats = np.array([m.latency_ms for m in members if m.feasible])
            hi = self.problem.latency_budget or lats.max()
            cap = self.rng.uniform(lats.min(), max(hi, lats.min()))
            under = [c for c in feasible if c.latency_ms <= cap]
            if under:
                return min(under, key=lambda c: c.error)
            return min(feasible, key=lambda c: c.latency_ms)
        return min(feasible, key=lambda c: c.error)

    def _mutate(self, parent: Evaluation) -> Arch:
        for _ in range(self.config.mutation_tries):
            child = self.space.mutate(parent.arch, self.rng)
            if child not in self.seen and self.problem.is_worth_querying(child):
                return child
        return self.sample_feasible(self.seen)
