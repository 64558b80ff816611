"""The ask/tell loop with up to N evaluations running at once on a WorkerPool.

Searchers keep asking. A batch searcher (NSGA-II/III, AG-Net, GA-NAS: `steady_state` False)
hands out a whole batch, which runs on every free worker, and is told the batch when all of it
has ended, exactly as in the one-by-one loop: same seed, same history, whatever N. A
steady-state searcher (random, regularized evolution, LaNAS) is asked again each time it is
told a result, keeping N evaluations pending.

Results are told in the order they were asked, one at a time, and the next ask comes right
after each tell; so the sequence of asks and tells, and the history, depend on the seed and N
alone, never on which worker finished first. The price: a worker whose result waits behind a
slower one that was asked earlier sits idle until that one ends.

Resume works as in the one-by-one loop: queries in history.csv are answered from it, in order.
An evaluation in flight when the driver was killed runs again, and its trained weights come
from its checkpoint when it had finished (hwnas/training/checkpoints.py).
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from hwnas.errors import HwnasError
from hwnas.evaluators.base import Evaluator
from hwnas.parallel.pool import Outcome, WorkerPool
from hwnas.problem import Evaluation, SearchProblem
from hwnas.search_loop import OnQuery, SearchResult, check_replay, front_of, replayed_answer
from hwnas.spaces.base import Arch
from hwnas.termination import QueryBudget, SearchState, Termination

OnFailure = Callable[[int, Arch, int, str], None]  # (query number, arch, attempts, reason)


@dataclass
class _Item:
    """One asked architecture, waiting to be told."""

    key: int
    arch: Arch
    query: Optional[int] = None  # 1-based query number when it spends one (None: answered for free)
    accuracy: Optional[float] = None  # NaN: failed
    replayed: bool = False
    attempts: int = 1
    reason: Optional[str] = None


def run_parallel_search(problem: SearchProblem, evaluator: Evaluator, searcher, pool: WorkerPool,
                        replay: Sequence[tuple[Arch, float]] = (), on_query: OnQuery | None = None,
                        termination: Termination | None = None, max_stall: int = 200,
                        on_failure: OnFailure | None = None) -> SearchResult:
    return _ParallelLoop(problem, evaluator, searcher, pool, replay, on_query, termination, max_stall,
                         on_failure).run()


class _ParallelLoop:
    def __init__(self, problem, evaluator, searcher, pool, replay, on_query, termination, max_stall, on_failure):
        check_replay(replay, evaluator)
        self.problem, self.evaluator, self.searcher, self.pool = problem, evaluator, searcher, pool
        self.replay, self.on_query, self.on_failure, self.max_stall = replay, on_query, on_failure, max_stall
        budget = QueryBudget(evaluator.budget)
        self.stop = budget if termination is None else termination | budget
        self.state = SearchState()
        self.steady = bool(getattr(searcher, "steady_state", False))
        self.pending: deque[_Item] = deque()  # asked, not yet told, in ask order
        self.queue: deque[Arch] = deque()  # asked, not yet pending (the rest of a batch)
        self.told: list[Evaluation] = []  # batch searchers: the current batch's evaluations
        self.in_flight: dict[Arch, _Item] = {}  # new queries not yet recorded
        self.by_key: dict[int, _Item] = {}
        self.keys = itertools.count()
        self.stall, self.ask_had_new, self.asked_once = 0, False, False
        self.reason: Optional[str] = None
        self.finished: Optional[str] = None  # a finite searcher's reason: stop once the pending are told

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> SearchResult:
        t0 = time.perf_counter()
        while self.reason is None:
            self._top_up()
            if self.reason is not None:
                break
            if not self.pending:
                if not self.steady and self.told:
                    self._tell(self.told)  # the budget ran out mid-batch: the prefix, as one by one
                    self.told = []
                    continue
                break  # nothing asked can be evaluated: the budget is spent
            head = self.pending[0]
            while not self._resolved(head):
                self._collect(self.pool.wait())
            self.pending.popleft()
            ev = self._record(head)
            if self.reason is not None:
                break  # stop right after this query, as one by one
            if self.steady:
                self._tell([ev])
            else:
                self.told.append(ev)
                if not self.pending and not self.queue:
                    self._tell(self.told)
                    self.told = []
        if self.reason is None:
            self.reason = self.finished or f"budget: {self.evaluator.budget} queries"
        hist = self.state.history
        return SearchResult(hist, front_of(hist), self.state.n_queries, self.reason, time.perf_counter() - t0)

    def _tell(self, evs: list[Evaluation]) -> None:
        self.searcher.tell(evs)

    def _budget_left(self) -> int:
        return self.evaluator.remaining - len(self.in_flight)

    def _top_up(self) -> None:
        """Ask and hand out work while the rule allows: a steady-state searcher keeps N pending,
        a batch searcher's batch fills every idle worker and the next ask waits for its tell."""
        while self.finished is None:
            if not self.queue:
                if not self.steady and (self.pending or self.told):
                    return
                if self.steady and len(self.pending) >= self.pool.size:
                    return
                if self._budget_left() <= 0:
                    return
                if self.asked_once:
                    self.stall = 0 if self.ask_had_new else self.stall + 1
                if self.stall >= self.max_stall:
                    self.reason = f"exhausted: the searcher proposed nothing new for {self.max_stall} rounds"
                    warnings.warn(f"searcher proposed nothing new for {self.max_stall} rounds; stopped after "
                                  f"{self.evaluator.used} of {self.evaluator.budget} queries", stacklevel=3)
                    return
                batch = self.searcher.ask()
                self.asked_once, self.ask_had_new = True, False
                if not batch and getattr(self.searcher, "finished", None):
                    self.finished = self.searcher.finished  # as one by one (search_loop)
                    return
                if not batch:
                    if not self.steady:
                        self._tell([])  # as one by one: every ask round ends with a tell
                    continue
                self.queue.extend(batch)
                continue
            arch = self.queue[0]
            if self.evaluator.cached(arch) is not None or arch in self.in_flight:
                self._append(arch)  # answered for free once the first one is told
                continue
            if self._budget_left() <= 0:
                self.queue.clear()  # the rest is not evaluated, as one by one
                continue
            q = self.evaluator.used + len(self.in_flight)  # 0-based number of this new query
            if q < len(self.replay):
                acc = replayed_answer(self.replay, q, arch)
                item = self._append(arch, q + 1)
                item.accuracy, item.replayed = acc, True
                continue
            if (self.steady and len(self.pending) >= self.pool.size) or (not self.steady and self.pool.idle <= 0):
                return
            item = self._append(arch, q + 1)
            self.pool.submit(item.key, arch)

    def _append(self, arch: Arch, query: Optional[int] = None) -> _Item:
        self.queue.popleft()
        item = _Item(next(self.keys), arch, query)
        self.pending.append(item)
        if query is not None:
            self.in_flight[arch] = item
            self.by_key[item.key] = item
            self.ask_had_new = True
        return item

    def _resolved(self, item: _Item) -> bool:
        if item.query is None:
            return self.evaluator.cached(item.arch) is not None
        return item.accuracy is not None

    def _collect(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            raise HwnasError("internal: waiting for an evaluation that no worker runs")
        for o in outcomes:
            item = self.by_key.pop(o.key)
            item.accuracy = math.nan if o.failed else o.accuracy
            item.attempts, item.reason = o.attempts, o.reason

    def _record(self, item: _Item) -> Evaluation:
        if item.query is None:
            return self.problem.make_evaluation(item.arch, self.evaluator.cached(item.arch))
        del self.in_flight[item.arch]
        self.by_key.pop(item.key, None)
        self.evaluator.record(item.arch, item.accuracy)
        ev = self.problem.make_evaluation(item.arch, item.accuracy)
        self.state.add(ev)
        if ev.failed and not item.replayed and self.on_failure is not None:
            self.on_failure(item.query, item.arch, item.attempts, item.reason or "")
        if self.on_query is not None:
            self.on_query(item.query, ev, item.replayed)
        self.reason = self.stop.reason(self.state)
        return ev
