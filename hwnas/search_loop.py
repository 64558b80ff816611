"""The ask/tell loop: evaluate what the searcher proposes until the query budget is spent.

Resuming replays the earlier run: the searcher is re-created with the same seed, and the
queries it proposes are answered from history.csv (checked to be the same architectures)
instead of the evaluator, so a resumed run ends exactly where an uninterrupted one would.
"""
from __future__ import annotations

import time
import warnings
from typing import Callable, Sequence

from hwnas.errors import HwnasError
from hwnas.evaluators.base import Evaluator
from hwnas.problem import Evaluation, SearchProblem
from hwnas.searchers.base import Searcher
from hwnas.spaces.base import Arch

OnQuery = Callable[[int, Evaluation, bool], None]  # (query number, evaluation, replayed)


class TimedSearcher:
    """Wraps a searcher to time its own compute (ask + tell), excluding evaluation."""

    def __init__(self, inner: Searcher):
        self.inner, self.seconds = inner, 0.0

    def ask(self):
        t = time.perf_counter()
        try:
            return self.inner.ask()
        finally:
            self.seconds += time.perf_counter() - t

    def tell(self, evs):
        t = time.perf_counter()
        try:
            return self.inner.tell(evs)
        finally:
            self.seconds += time.perf_counter() - t


def run_search(problem: SearchProblem, evaluator: Evaluator, searcher: Searcher,
               replay: Sequence[tuple[Arch, float]] = (), on_query: OnQuery | None = None,
               max_stall: int = 200, until: Callable[[Evaluation], bool] | None = None) -> list[Evaluation]:
    """Run until the budget is spent (or the searcher has nothing new to propose).

    Returns the evaluations in query order. `max_stall`: consecutive ask() rounds without a
    new query after which the search stops (e.g. a searcher that converged on seen archs).
    `until`: stop right after the first new query for which it returns True (benchmarks that
    count the queries needed to reach a target).
    """
    if len(replay) > evaluator.budget:
        raise HwnasError(f"the run dir's history holds {len(replay)} queries, more than "
                         f"budget.queries={evaluator.budget}")
    history: list[Evaluation] = []
    stall = 0
    while evaluator.remaining > 0 and stall < max_stall:
        batch = searcher.ask()
        told: list[Evaluation] = []
        new = 0
        for arch in batch:
            acc = evaluator.cached(arch)
            if acc is None:
                if evaluator.remaining <= 0:
                    break
                q = evaluator.used  # 0-based number of this new query
                replayed = q < len(replay)
                if replayed:
                    want, acc = replay[q]
                    if want != arch:
                        raise HwnasError(
                            f"cannot resume: history.csv query {q + 1} is {want} but the search now "
                            f"proposes {arch}; the run dir was made with another config or version. "
                            f"Start over without resume=true or pick another run dir")
                    evaluator.record(arch, acc)
                else:
                    acc, _ = evaluator.evaluate(arch)
                ev = problem.make_evaluation(arch, acc)
                history.append(ev)
                new += 1
                if on_query is not None:
                    on_query(q + 1, ev, replayed)
                if until is not None and until(ev):
                    return history
            else:
                ev = problem.make_evaluation(arch, acc)
            told.append(ev)
        searcher.tell(told)
        stall = 0 if new else stall + 1
    if evaluator.remaining > 0:
        warnings.warn(f"searcher proposed nothing new for {max_stall} rounds; stopped after "
                      f"{evaluator.used} of {evaluator.budget} queries", stacklevel=2)
    return history
