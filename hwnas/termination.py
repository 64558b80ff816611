"""When a search stops: composable criteria (after pymoo's `core/termination.py`).

A criterion looks at the search's state after each new accuracy query and says why it stops
(`reason`), or None. Criteria compose with `|` (stop at the first that fires). The evaluator's
query budget always applies; the others are optional, e.g.
`Stall(30) | Target(lambda ev: ev.accuracy >= 94.0)`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hwnas.problem import Evaluation


@dataclass
class SearchState:
    """What criteria see: every new query so far (replayed ones included), in query order."""

    history: list[Evaluation] = field(default_factory=list)
    last_improvement: int = 0  # n_queries when the feasible front last gained a point (0: never)
    _front: np.ndarray | None = None  # objectives of the feasible points seen, k x m

    @property
    def n_queries(self) -> int:
        return len(self.history)

    def add(self, ev: Evaluation) -> None:
        self.history.append(ev)
        if not ev.feasible:
            return
        f = np.asarray(ev.objectives(), dtype=float)
        # Improves the front iff no earlier feasible point is as good in every objective.
        if self._front is None or not np.any(np.all(self._front <= f, axis=1)):
            self.last_improvement = self.n_queries
        self._front = f[None] if self._front is None else np.vstack([self._front, f])


class Termination(ABC):
    def has_terminated(self, state: SearchState) -> bool:
        return self.reason(state) is not None

    @abstractmethod
    def reason(self, state: SearchState) -> str | None:
        """Why the search stops now (one short phrase), or None to go on."""

    def __or__(self, other: Termination) -> AnyOf:
        return AnyOf(self, other)


class QueryBudget(Termination):
    def __init__(self, n: int):
        self.n = int(n)

    def reason(self, state: SearchState) -> str | None:
        return f"budget: {self.n} queries" if state.n_queries >= self.n else None


class Stall(Termination):
    """`n` queries in a row that add nothing to the feasible front (counted from the first query)."""

    def __init__(self, n: int):
        self.n = int(n)

    def reason(self, state: SearchState) -> str | None:
        if state.n_queries - state.last_improvement >= self.n:
            return f"stall: {self.n} queries without improving the front"
        return None


class Target(Termination):
    """The latest query meets `predicate` (e.g. reaches an accuracy)."""

    def __init__(self, predicate: Callable[[Evaluation], bool], label: str = "target reached"):
        self.predicate, self.label = predicate, label

    def reason(self, state: SearchState) -> str | None:
        return self.label if state.history and self.predicate(state.history[-1]) else None


class AnyOf(Termination):
    def __init__(self, *criteria: Termination):
        self.criteria = [c for t in criteria for c in (t.criteria if isinstance(t, AnyOf) else [t])]

    def reason(self, state: SearchState) -> str | None:
        for c in self.criteria:
            r = c.reason(state)
            if r is not None:
                return r
        return None
