import csv
from dataclasses import replace

import pytest

from conftest import make_search_cfg
from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher, search
from hwnas.searchers import SEARCHERS

BASELINES = ["random", "regularized_evolution", "nsga2", "nsga3"]


def _run(tmp_path, name, **kw):
    cfg = make_search_cfg(**kw)
    out = tmp_path / name
    summary = search(cfg, out, progress=False, log=lambda *a: None)
    return summary, out


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("searcher", BASELINES)
def test_seeded_determinism_budget_and_feasibility(tmp_path, searcher):
    s1, d1 = _run(tmp_path, "a", searcher=searcher, queries=30, seed=1)
    s2, d2 = _run(tmp_path, "b", searcher=searcher, queries=30, seed=1)
    s3, d3 = _run(tmp_path, "c", searcher=searcher, queries=30, seed=2)
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    assert (d1 / "history.csv").read_bytes() != (d3 / "history.csv").read_bytes()
    hist = _rows(d1 / "history.csv")
    assert len(hist) == s1["queries"] == 30  # the budget, exactly
    assert [int(r["query"]) for r in hist] == list(range(1, 31))
    assert len({r["arch"] for r in hist}) == 30  # never charged twice
    front = _rows(d1 / "pareto.csv")
    assert front and all(r["feasible"] == "true" and float(r["latency_ms"]) <= 20.0 for r in front)
    for key in ("searcher", "seed", "space", "dataset", "device", "budget", "constraints", "queries",
                "best_feasible_accuracy", "hv_ratio", "front_regret", "wall_s"):
        assert key in s1
    assert s1["constraints"]["latency_ms"] == 20.0 and 0 <= s1["hv_ratio"] <= 1


def test_front_is_non_dominated_and_accuracy_matches_benchmark(tmp_path, data_dir):
    from hwnas.data.nb201 import load_accuracy, load_latency

    acc = load_accuracy(data_dir)["cifar10"]
    lat = load_latency(data_dir)["raspi4"]
    _, d = _run(tmp_path, "r", searcher="regularized_evolution", queries=40, latency_ms=None)
    hist = _rows(d / "history.csv")
    for r in hist:
        assert float(r["accuracy"]) == acc[int(r["index"])] and float(r["latency_ms"]) == lat[int(r["index"])]
    front = _rows(d / "pareto.csv")
    pts = [(float(r["accuracy"]), float(r["latency_ms"])) for r in hist]
    for r in front:
        a, l = float(r["accuracy"]), float(r["latency_ms"])
        assert not any(a2 >= a and l2 <= l and (a2 > a or l2 < l) for a2, l2 in pts)


def test_energy_is_a_third_objective_and_constraint(tmp_path):
    summary, d = _run(tmp_path, "e", searcher="nsga2", device="pi5_onnx", dataset="cifar100",
                      latency_ms=None, queries=30)
    assert summary["objectives"] == ["error", "latency_ms", "energy_mj"]
    assert "energy_mj" in _rows(d / "history.csv")[0]


def test_nsga_uses_pymoo_algorithms(data_dir):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.algorithms.moo.nsga3 import NSGA3

    for name, cls in (("nsga2", NSGA2), ("nsga3", NSGA3)):
        cfg = make_search_cfg(searcher=name)
        s = build_setup(cfg)
        searcher = make_searcher(cfg.searcher, s.problem, 0)
        assert isinstance(searcher.algorithm, cls)
        batch = searcher.ask()
        assert batch and all(s.problem.is_feasible(a) for a in batch)  # infeasible never queried


def test_regularized_evolution_infeasible_parent_never_wins(data_dir):
    cfg = make_search_cfg(searcher="regularized_evolution", population_size=4, sample_size=4, objective="constrained")
    s = build_setup(cfg)
    re = make_searcher(cfg.searcher, s.problem, 0)
    feasible = [a for a in s.problem.feasible_pool()[:3]]
    infeasible = next(a for a in s.space.enumerate() if not s.problem.is_feasible(a))
    evs = [s.problem.make_evaluation(a, 50.0 + i) for i, a in enumerate(feasible)]
    evs.append(Evaluation(infeasible, 99.9, 0.1, 500.0, None, False))
    re.tell(evs)
    for _ in range(20):
        assert re._tournament().arch == feasible[-1]


def test_unknown_searcher_option_is_a_clear_error(data_dir):
    from hwnas.errors import HwnasError

    cfg = make_search_cfg(searcher="nsga2")
    cfg = replace(cfg, searcher={"name": "nsga2", "pop_sise": 3})
    s = build_setup(make_search_cfg())
    with pytest.raises(HwnasError, match="pop_sise"):
        make_searcher(cfg.searcher, s.problem, 0)
    with pytest.raises(HwnasError, match="valid searchers: .*nsga2.*random"):
        SEARCHERS.get("nope")
