"""Random search: uniformly random feasible architectures, without repeats (honest baseline)."""
from __future__ import annotations

from hwnas.problem import Evaluation
from hwnas.searchers.base import Searcher, register_searcher
from hwnas.searchers.configs import RandomConfig
from hwnas.spaces.base import Arch


@register_searcher("random", RandomConfig)
class RandomSearch(Searcher):
    steady_state = True

    def __init__(self, problem, config: RandomConfig, seed: int, progress: bool = False):
        super().__init__(problem, config, seed, progress)
        pool = problem.feasible_pool()
        # A tabular space is shuffled once: sampling without replacement, no rejection loop.
        self._order = None if pool is None else [pool[i] for i in self.rng.permutation(len(pool))]
        self._asked: set[Arch] = set()

    def ask(self) -> list[Arch]:
        out = []
        for _ in range(self.config.batch_size):
            if self._order is not None:
                if not self._order:
                    break
                a = self._order.pop()
            else:
                a = self.sample_feasible(self._asked)
            self._asked.add(a)
            out.append(a)
        return out

    def tell(self, evaluations: list[Evaluation]) -> None:
        pass
