"""benchmarks/search_quality.py: `--prefix` scores the first queries of one long run as the
shorter runs, the LaMOO claim's queries-to-reach, and the seed-major task order of `--resume`."""
import numpy as np
import pandas as pd
import pytest

from benchmarks.search_quality import (
    make_tasks,
    one_run,
    queries_to_reach,
    row_key,
    sample_efficiency,
    task_key,
)

SCORED = ["hv_ratio", "front_regret", "best_feasible_accuracy", "queries_to_best", "queries"]


@pytest.mark.parametrize("searcher, lat", [("nsga2", None), ("lamoo:inner=random,n_init=6", 20.0)])
def test_a_prefix_of_a_long_run_scores_as_the_short_run(data_dir, searcher, lat):
    """The searchers never see the query budget, so the first 17 queries of a 40-query run are
    a 17-query run's (17: mid-batch for both), and so are their scores."""
    long_rows = one_run((searcher, "cifar10", "raspi4", (17, 40), 3, lat))
    short = one_run((searcher, "cifar10", "raspi4", (17,), 3, lat))[0]
    assert [r["budget"] for r in long_rows] == [17, 40] and all(r["prefix_of"] == 40 for r in long_rows)
    for k in SCORED:
        assert long_rows[0][k] == pytest.approx(short[k], nan_ok=True), k
    # Compute is counted up to the prefix: never more than the whole run's.
    assert 0 <= long_rows[0]["searcher_cpu_s"] <= long_rows[1]["searcher_cpu_s"]
    assert 0 <= long_rows[0]["searcher_s"] <= long_rows[1]["searcher_s"]
    # The long run's own score is not the prefix's: the check above compares something.
    assert long_rows[1]["hv_ratio"] > long_rows[0]["hv_ratio"]
    curve = [float(x) for x in long_rows[1]["hv_curve"].split()]
    assert len(curve) == 40 and curve == sorted(curve)  # adding queries never loses hypervolume
    assert curve[16] == pytest.approx(short["hv_ratio"], abs=1e-5)
    assert curve[-1] == pytest.approx(long_rows[1]["hv_ratio"], abs=1e-5)


def test_queries_to_reach_and_the_sample_efficiency_table():
    assert queries_to_reach([0.1, 0.5, 0.5, 0.9], 0.5) == 2
    assert queries_to_reach([0.1, 0.5], 0.6) is None
    rows = []
    for seed, (base, fast) in enumerate([([0.2, 0.4, 0.6], [0.5, 0.7, 0.8]), ([0.2, 0.4, 0.9], [0.3, 0.5, 0.6])]):
        for name, curve in (("mobo", base), ("lamoo", fast)):
            rows.append(dict(searcher=name, dataset="d", device="v", constrained=False, seed=seed, budget=3,
                             prefix_of=3, hv_curve=" ".join(map(str, curve))))
    eff = sample_efficiency(pd.DataFrame(rows))
    assert eff["target"].tolist() == [0.6, 0.9]
    assert eff["fast_q"].tolist()[0] == 2 and np.isnan(eff["fast_q"].tolist()[1])  # never reached 0.9
    assert eff["base_q"].tolist() == [3, 3]


def test_tasks_are_seed_major_and_resume_keys_match_rows():
    scen = [("cifar10", "raspi4", 5.0), ("cifar100", "pixel3", 7.0)]
    tasks = make_tasks(["random", "mobo"], scen, [100, 50, 200], seeds=2, prefix=True)
    assert len(tasks) == 2 * 2 * 2 * 2  # searchers x scenarios x budget settings x seeds: one run each
    assert [t[4] for t in tasks] == [0] * 8 + [1] * 8  # every seed-0 run first
    assert {t[3] for t in tasks} == {(50, 100, 200)}
    assert len(make_tasks(["random"], scen, [50, 100], seeds=1, prefix=False)) == 2 * 2 * 2
    row = dict(searcher="mobo", dataset="cifar10", device="raspi4", prefix_of=200, seed=1, constrained=True)
    assert row_key(row) in {task_key(t) for t in tasks}
