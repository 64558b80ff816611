import numpy as np
from conftest import make_search_cfg, run_search_dir

from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher
from hwnas.search_loop import SearchResult, front_of, run_search
from hwnas.termination import AnyOf, QueryBudget, SearchState, Stall, Target


def _run(termination=None, searcher="random", queries=60, seed=0):
    cfg = make_search_cfg(searcher=searcher, queries=queries, latency_ms=None, seed=seed)
    s = build_setup(cfg)
    return run_search(s.problem, s.evaluator, make_searcher(cfg.searcher, s.problem, seed), termination=termination)


def test_default_stops_at_the_evaluators_budget_and_returns_a_result():
    r = _run()
    assert isinstance(r, SearchResult)
    assert r.n_queries == len(r.history) == 60 and r.reason == "budget: 60 queries"
    assert r.front == front_of(r.history) and len(r.front) >= 2 and r.wall_s >= 0


def test_query_budget_stops_early_and_keeps_the_same_prefix():
    full = _run()
    r = _run(QueryBudget(17))
    assert r.n_queries == 17 and r.reason == "budget: 17 queries"
    assert [e.arch for e in r.history] == [e.arch for e in full.history[:17]]


def test_target_stops_right_after_the_first_query_meeting_it():
    full = _run()
    accs = np.array([e.accuracy for e in full.history])
    goal = float(np.sort(accs)[-5])  # met first somewhere inside the run
    first = int(np.nonzero(accs >= goal)[0][0]) + 1
    r = _run(Target(lambda ev: ev.accuracy >= goal))
    assert r.n_queries == first < 60 and r.reason == "target reached"


def test_stall_counts_queries_since_the_front_last_improved():
    full = _run(searcher="regularized_evolution", queries=120)
    state = SearchState()
    last = []
    for ev in full.history:
        state.add(ev)
        last.append(state.last_improvement)
    n = 8
    stop_at = next(i + 1 for i, li in enumerate(last) if i + 1 - li >= n)
    r = _run(Stall(n), searcher="regularized_evolution", queries=120)
    assert r.n_queries == stop_at < 120 and r.reason.startswith("stall: 8 queries")
    # The query that last improved the front is non-dominated among those before it.
    k = last[stop_at - 1]
    F = np.array([e.objectives() for e in r.history[:k] if e.feasible])
    assert not np.any(np.all(F[:-1] <= F[-1], axis=1))


def test_front_improvement_ignores_dominated_duplicate_and_infeasible_points():
    st = SearchState()
    for acc, lat, feas, improves in [(50, 5.0, True, True), (40, 6.0, True, False), (50, 5.0, True, False),
                                     (99, 1.0, False, False), (60, 7.0, True, True), (10, 1.0, True, True)]:
        before = st.last_improvement
        st.add(Evaluation(("x",), acc, 100 - acc, lat, None, feas))
        assert (st.last_improvement == st.n_queries) == improves and (improves or st.last_improvement == before)


def test_criteria_compose_with_or_and_the_first_to_fire_names_the_reason():
    crit = Stall(1000) | Target(lambda ev: True, "first query") | QueryBudget(5)
    assert isinstance(crit, AnyOf) and len(crit.criteria) == 3
    r = _run(crit)
    assert r.n_queries == 1 and r.reason == "first query"
    r = _run(Stall(1000) | QueryBudget(5))
    assert r.n_queries == 5 and r.reason == "budget: 5 queries"


def test_summary_records_why_the_search_stopped(tmp_path):
    summary, _ = run_search_dir(tmp_path, "s", searcher="random", queries=12)
    assert summary["stop_reason"] == "budget: 12 queries"


class _Finite:
    """A searcher with a fixed list to propose (DASH's lambda sweep is one): one per ask, then it
    says it is finished."""

    steady_state = True

    def __init__(self, archs):
        self.archs, self.finished = list(archs), None

    def ask(self):
        if not self.archs:
            self.finished = "finished: every lambda searched"
            return []
        return [self.archs.pop(0)]

    def tell(self, evaluations):
        pass


class _InProcessPool:
    """WorkerPool's interface, evaluating at once in this process (the loop's logic without Ray)."""

    size = idle = 2

    def __init__(self, evaluator):
        self.evaluator, self.done = evaluator, []

    def submit(self, key, arch):
        from hwnas.parallel.pool import Outcome

        self.done.append(Outcome(key, arch, self.evaluator.compute(arch), attempts=1))

    def wait(self):
        out, self.done = self.done, []
        return out


def test_a_finite_searcher_ends_the_run_with_its_reason_in_both_loops():
    from hwnas.parallel.loop import run_parallel_search

    cfg = make_search_cfg(searcher="random", queries=50, latency_ms=None, seed=0)
    s = build_setup(cfg)
    archs = [s.problem.space.from_index(i) for i in (5, 77, 901)]
    serial = run_search(s.problem, s.evaluator, _Finite(archs))
    s = build_setup(cfg)
    parallel = run_parallel_search(s.problem, s.evaluator, _Finite(archs), _InProcessPool(s.evaluator))
    for r in (serial, parallel):
        assert r.reason == "finished: every lambda searched"  # not 200 empty asks and "exhausted"
        assert [e.arch for e in r.history] == archs
