"""The ask/tell protocol every searcher follows (after pymoo's Algorithm).

`ask()` proposes architectures to evaluate; `tell()` receives their evaluations. The search
loop owns the budget: it evaluates what was asked until the accuracy queries run out. An
architecture already evaluated is answered again for free, so searchers need not track that.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hwnas.config import store_searcher_schema
from hwnas.problem import Evaluation, SearchProblem
from hwnas.registry import Registry
from hwnas.searchers import SEARCHER_MODULES
from hwnas.searchers.options import validate_options
from hwnas.spaces.base import Arch


class Searcher(ABC):
    #: True when ask() may come again before the last ask's evaluations are told, and tell()
    #: takes them one at a time (random, regularized evolution, LaNAS): parallel evaluation then
    #: asks again as soon as a result is told. False: a batch is asked, evaluated, told whole.
    steady_state: bool = False

    def __init__(self, problem: SearchProblem, config: Any, seed: int, progress: bool = False):
        validate_options(config)  # every option's type and bounds, before any work
        self.progress = progress  # may show a bar for long set-up work (e.g. AG-Net's pretraining)
        self.problem = problem
        self.space = problem.space
        self.config = config
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    @abstractmethod
    def ask(self) -> list[Arch]:
        """Architectures to evaluate next (an empty list means nothing new to propose)."""

    @abstractmethod
    def tell(self, evaluations: list[Evaluation]) -> None:
        """Evaluations of (a prefix of) what the last ask() proposed, in the same order."""

    # --- helpers shared by searchers ---------------------------------------------------
    def sample_feasible(self, exclude: set | frozenset = frozenset(), tries: int = 1000) -> Arch:
        """A uniformly random architecture worth querying, not in `exclude` (latency is free)."""
        pool = self.problem.feasible_pool()
        if pool is not None:
            for _ in range(tries):
                a = pool[int(self.rng.integers(len(pool)))]
                if a not in exclude:
                    return a
            rest = [a for a in pool if a not in exclude]
            return rest[int(self.rng.integers(len(rest)))] if rest else pool[int(self.rng.integers(len(pool)))]
        for _ in range(tries):
            a = self.space.sample(self.rng)
            if a not in exclude and self.problem.is_worth_querying(a):
                return a
        return self.space.sample(self.rng)


@dataclass(frozen=True)
class SearcherEntry:
    cls: type[Searcher]
    config: type


SEARCHERS: Registry[SearcherEntry] = Registry("searcher", lazy=SEARCHER_MODULES)  # modules load on first get


def register_searcher(name: str, config: type) -> Callable[[type[Searcher]], type[Searcher]]:
    """Register a searcher class and its typed config (also Hydra's schema for conf/searcher/<name>.yaml)."""

    def deco(cls: type[Searcher]) -> type[Searcher]:
        SEARCHERS.register(name)(SearcherEntry(cls, config))
        store_searcher_schema(name, config)
        return cls

    return deco
