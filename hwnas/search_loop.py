"""The ask/tell loop: evaluate what the searcher proposes until a stopping criterion fires.

Resuming replays the earlier run: the searcher is re-created with the same seed, and the
queries it proposes are answered from history.csv (checked to be the same architectures)
instead of the evaluator, so a resumed run ends exactly where an uninterrupted one would.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.evaluators.base import Evaluator
from hwnas.pareto import non_dominated
from hwnas.problem import Evaluation, SearchProblem
from hwnas.searchers.base import Searcher
from hwnas.spaces.base import Arch
from hwnas.termination import QueryBudget, SearchState, Termination

OnQuery = Callable[[int, Evaluation, bool], None]  # (query number, evaluation, replayed)


@dataclass
class SearchResult:
    history: list[Evaluation]  # every new query, in query order
    front: list[int]  # positions in `history` of the feasible non-dominated ones, by latency
    n_queries: int
    reason: str  # why it stopped: the criterion's phrase, or "exhausted: ..." when nothing new came
    wall_s: float


def front_of(evals: list[Evaluation]) -> list[int]:
    """Positions of the feasible non-dominated evaluations, by increasing latency."""
    feas = [i for i, e in enumerate(evals) if e.feasible]
    if not feas:
        return []
    F = np.array([evals[i].objectives() for i in feas])
    nd = [feas[k] for k in np.nonzero(non_dominated(F))[0]]
    return sorted(nd, key=lambda i: (evals[i].latency_ms, evals[i].error))


def check_replay(replay: Sequence[tuple[Arch, float]], evaluator: Evaluator) -> None:
    if len(replay) > evaluator.budget:
        raise HwnasError(f"the run dir's history holds {len(replay)} queries, more than "
                         f"budget.queries={evaluator.budget}")


def replayed_answer(replay: Sequence[tuple[Arch, float]], q: int, arch: Arch) -> float:
    """The accuracy history.csv holds for query `q` (0-based), checked to be of `arch`."""
    want, acc = replay[q]
    if want != arch:
        raise HwnasError(f"cannot resume: history.csv query {q + 1} is {want} but the search now proposes {arch}; "
                         f"the run dir was made with another config or version. Start over without resume=true "
                         f"or pick another run dir")
    return float(acc)


class TimedSearcher:
    """Wraps a searcher to time its own compute (ask + tell), excluding evaluation."""

    def __init__(self, inner: Searcher):
        self.inner, self.seconds = inner, 0.0
        self.steady_state = inner.steady_state

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
               termination: Termination | None = None, max_stall: int = 200) -> SearchResult:
    """Run until `termination` (always with the evaluator's budget) fires after a new query, or
    the searcher has proposed nothing new for `max_stall` consecutive ask() rounds.
    """
    t0 = time.perf_counter()
    check_replay(replay, evaluator)
    budget = QueryBudget(evaluator.budget)
    stop = budget if termination is None else termination | budget  # the user's reason wins a tie
    state = SearchState()
    reason = None
    stall = 0
    while reason is None and evaluator.remaining > 0:
        if stall >= max_stall:
            reason = f"exhausted: the searcher proposed nothing new for {max_stall} rounds"
            warnings.warn(f"searcher proposed nothing new for {max_stall} rounds; stopped after "
                          f"{evaluator.used} of {evaluator.budget} queries", stacklevel=2)
            break
        batch = searcher.ask()
        done = getattr(searcher, "finished", None)  # a finite searcher (a lambda sweep) says when it is over
        if not batch and done:
            reason = done
            break
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
                    acc = replayed_answer(replay, q, arch)
                    evaluator.record(arch, acc)
                else:
                    acc, _ = evaluator.evaluate(arch)
                ev = problem.make_evaluation(arch, acc)
                state.add(ev)
                new += 1
                if on_query is not None:
                    on_query(q + 1, ev, replayed)
                reason = stop.reason(state)
                if reason is not None:
                    break  # stop right after this query: the rest of the batch is not evaluated
            else:
                ev = problem.make_evaluation(arch, acc)
            told.append(ev)
        if reason is not None:
            break
        searcher.tell(told)
        stall = 0 if new else stall + 1
    if reason is None:  # the evaluator's budget was spent before this run's own queries counted it
        reason = f"budget: {evaluator.budget} queries"
    return SearchResult(state.history, front_of(state.history), state.n_queries, reason,
                        time.perf_counter() - t0)
