import numpy as np
import pytest
from conftest import make_search_cfg, read_rows, run_search_dir
from generative_checks import check_seeded_without_a_pool

from hwnas.search import build_setup, make_searcher


def _run(tmp_path, name, **kw):
    return run_search_dir(tmp_path, name, searcher="lanas", **kw)


@pytest.mark.parametrize("kw", [{}, {"surrogate": True}, {"objective": "accuracy", "relearn_every": 3}])
def test_seeded_determinism_budget_no_repeats_feasible_front(tmp_path, kw):
    s1, d1 = _run(tmp_path, "a", queries=40, seed=1, **kw)
    _, d2 = _run(tmp_path, "b", queries=40, seed=1, **kw)
    _, d3 = _run(tmp_path, "c", queries=40, seed=2, **kw)
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    assert (d1 / "history.csv").read_bytes() != (d3 / "history.csv").read_bytes()
    hist = read_rows(d1 / "history.csv")
    assert len(hist) == s1["queries"] == 40
    assert len({r["arch"] for r in hist}) == 40  # never queried twice
    assert all(r["feasible"] == "true" for r in hist)  # latency is free: no query spent on infeasible
    front = read_rows(d1 / "pareto.csv")
    assert front and all(r["feasible"] == "true" and float(r["latency_ms"]) <= 20.0 for r in front)


def test_energy_three_objectives(tmp_path):
    summary, d = _run(tmp_path, "e", device="pi5_onnx", dataset="cifar100", latency_ms=None, queries=30)
    assert summary["objectives"] == ["error", "latency_ms", "energy_mj"]
    hist = read_rows(d / "history.csv")
    assert len(hist) == 30 and len({r["arch"] for r in hist}) == 30 and "energy_mj" in hist[0]


def test_tree_regions_hold_what_is_sampled(data_dir):
    cfg = make_search_cfg(searcher="lanas", queries=45, n_init=10, relearn_every=1, depth=3, min_split=6)
    s = build_setup(cfg)
    la = make_searcher(cfg.searcher, s.problem, 0)
    # Record the path MCTS chose and the constraint level `_sample_in` sampled under: the
    # deepest `upto` whose region had candidates (the leaf's, or an ancestor's when exhausted).
    used: dict = {}
    sample_in, candidates = la._sample_in, la._candidates

    def recording_sample_in(path, k):
        used.update(path=path, upto=None)
        return sample_in(path, k)

    def recording_candidates(path, upto, k):
        out = candidates(path, upto, k)
        if out and used["upto"] is None:
            used["upto"] = upto
        return out

    la._sample_in, la._candidates = recording_sample_in, recording_candidates
    checked = constrained = 0
    while s.evaluator.remaining > 0:
        used.clear()
        batch = la.ask()
        if used:
            path, upto = used["path"], used["upto"]
            assert upto is not None, "no region had candidates: fell back to a random feasible arch"
            assert la._in_region(path, la._encode(batch), upto).all()
            checked += 1
            constrained += upto >= 1  # at least one linear constraint was in force
        la.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in batch])
    assert checked >= 30 and constrained >= 30
    assert la.root is not None and not la.root.leaf  # the tree did split
    # the good side of the root holds better samples on average
    assert la.root.good.value >= la.root.bad.value


def test_infeasible_samples_are_always_bad_and_utility_in_unit_interval(data_dir):
    from hwnas.problem import Evaluation

    cfg = make_search_cfg(searcher="lanas")
    s = build_setup(cfg)
    la = make_searcher(cfg.searcher, s.problem, 0)
    pool = s.problem.feasible_pool()
    evs = [s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in pool[:12]]
    infeasible = next(a for a in s.space.enumerate() if not s.problem.is_feasible(a))
    evs.append(Evaluation(infeasible, 99.9, 0.1, 500.0, None, False))
    la.tell(evs)
    u = la.utilities()
    assert u[-1] == 0.0 and np.all((u[:-1] > 0) & (u[:-1] <= 1))


def test_non_tabular_space_uses_rejection_sampling(data_dir, monkeypatch):
    check_seeded_without_a_pool(make_search_cfg(searcher="lanas", queries=35), monkeypatch)


def test_logistic_regression_separates():
    from hwnas.searchers.lanas import fit_logistic

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 0.0]) > 0.3).astype(float)
    w, b = fit_logistic(X, y, l2=0.1)
    assert np.mean((X @ w + b > 0) == y) > 0.95


def test_bad_config_is_a_clear_error(data_dir):
    from hwnas.errors import HwnasError

    cfg = make_search_cfg(searcher="lanas", objective="speed")
    s = build_setup(cfg)
    with pytest.raises(HwnasError, match="objective"):
        make_searcher(cfg.searcher, s.problem, 0)
