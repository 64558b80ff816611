"""NSGA-II and NSGA-III through pymoo's own algorithms, driven by pymoo's ask/tell interface.

The space's categorical vector is the integer decision vector (rounded SBX crossover and
polynomial mutation, duplicates eliminated). The latency (and energy) budget is a pymoo
inequality constraint. Members that break it (or are degenerate cells) are told to pymoo with
their free violation and no accuracy query is spent on them.
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.problems.static import StaticProblem

from hwnas.problem import UNBOUNDED_WORST_ERROR, Evaluation, SearchProblem
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import NSGA2Config, NSGA3Config
from hwnas.spaces.base import Arch

_UNQUERIED_ERROR = UNBOUNDED_WORST_ERROR  # error pymoo sees for a member no query was spent on


class _VectorProblem(Problem):
    """The search space as pymoo sees it: integer vectors, n_obj objectives, 0/1 constraint."""

    def __init__(self, problem: SearchProblem):
        cards = np.asarray(problem.space.cardinalities())
        super().__init__(n_var=len(cards), n_obj=problem.n_obj,
                         n_ieq_constr=1 if problem.constrained else 0,
                         xl=np.zeros(len(cards)), xu=cards - 1.0, vtype=int)


class _PymooSearcher(Searcher):
    def __init__(self, problem: SearchProblem, config: NSGA2Config, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        self.vproblem = _VectorProblem(problem)
        self.algorithm = self._make_algorithm(problem.n_obj)
        self.algorithm.setup(self.vproblem, termination=NoTermination(), seed=self.seed, verbose=False)
        self._pop = None
        self._archs: list[Arch] = []
        self._asked: list[int] = []  # positions in the population that need an accuracy query

    @abstractmethod
    def _make_algorithm(self, n_obj: int):
        """The configured pymoo algorithm."""

    def _operators(self) -> dict:
        c = self.config
        return dict(
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=c.crossover_prob, eta=c.crossover_eta, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=c.mutation_eta, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )

    def ask(self) -> list[Arch]:
        for _ in range(self.config.max_empty_generations):
            pop = self.algorithm.ask()
            archs = [self.space.from_vector(x) for x in pop.get("X")]
            worth = self.problem.worth_querying(archs)
            if worth.any():
                self._pop, self._archs = pop, archs
                self._asked = [i for i, ok in enumerate(worth) if ok]
                return [archs[i] for i in self._asked]
            # Nothing to query in this generation: tell pymoo the free violations and go on.
            self._tell_pop(pop, archs, {})
        return []

    def tell(self, evaluations: list[Evaluation]) -> None:
        if self._pop is None or len(evaluations) < len(self._asked):
            return  # the budget ran out mid-generation: the search is over
        errors = {self._asked[k]: ev.error for k, ev in enumerate(evaluations)}
        self._tell_pop(self._pop, self._archs, errors)
        self._pop = None

    def _tell_pop(self, pop, archs: list[Arch], errors: dict[int, float]) -> None:
        n = len(archs)
        F = np.empty((n, self.problem.n_obj))
        # Members not queried (infeasible or degenerate) get the worst error: pymoo ranks
        # infeasible ones by their violation anyway, and degenerate ones are chance-level.
        F[:, 0] = [errors.get(i, _UNQUERIED_ERROR) for i in range(n)]
        F[:, 1] = self.problem.latency(archs)
        if self.problem.use_energy:
            F[:, 2] = self.problem.energy(archs)
        out = {"F": F}
        if self.problem.constrained:
            out["G"] = self.problem.violation(archs).reshape(-1, 1)
        PymooEvaluator().eval(StaticProblem(self.vproblem, **out), pop)
        self.algorithm.tell(infills=pop)


@register_searcher("nsga2", NSGA2Config)
class NSGA2Searcher(_PymooSearcher):
    def _make_algorithm(self, n_obj: int):
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=self.config.pop_size, **self._operators())


@register_searcher("nsga3", NSGA3Config)
class NSGA3Searcher(_PymooSearcher):
    def _make_algorithm(self, n_obj: int):
        from pymoo.algorithms.moo.nsga3 import NSGA3
        from pymoo.util.ref_dirs import get_reference_directions

        ref_dirs = get_reference_directions("das-dennis", n_obj, n_partitions=self.config.n_partitions)
        pop_size = max(self.config.pop_size, len(ref_dirs))
        return NSGA3(ref_dirs=ref_dirs, pop_size=pop_size, **self._operators())
