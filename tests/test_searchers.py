import re
from dataclasses import replace

import pytest
from conftest import make_search_cfg, read_rows, run_search_dir

from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher
from hwnas.searchers import SEARCHERS

BASELINES = ["random", "regularized_evolution", "nsga2", "nsga3", "mobo", "lamoo"]


@pytest.mark.parametrize("searcher", BASELINES)
def test_seeded_determinism_budget_and_feasibility(tmp_path, searcher):
    s1, d1 = run_search_dir(tmp_path, "a", searcher=searcher, queries=30, seed=1)
    s2, d2 = run_search_dir(tmp_path, "b", searcher=searcher, queries=30, seed=1)
    s3, d3 = run_search_dir(tmp_path, "c", searcher=searcher, queries=30, seed=2)
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    assert (d1 / "history.csv").read_bytes() != (d3 / "history.csv").read_bytes()
    hist = read_rows(d1 / "history.csv")
    assert len(hist) == s1["queries"] == 30  # the budget, exactly
    assert [int(r["query"]) for r in hist] == list(range(1, 31))
    assert len({r["arch"] for r in hist}) == 30  # never charged twice
    front = read_rows(d1 / "pareto.csv")
    assert front and all(r["feasible"] == "true" and float(r["latency_ms"]) <= 20.0 for r in front)
    for key in ("searcher", "seed", "space", "dataset", "device", "budget", "constraints", "queries",
                "best_feasible_accuracy", "hv_ratio", "front_regret", "wall_s"):
        assert key in s1
    assert s1["constraints"]["latency_ms"] == 20.0 and 0 <= s1["hv_ratio"] <= 1


def test_front_is_non_dominated_and_accuracy_matches_benchmark(tmp_path, data_dir):
    from hwnas.data.nb201 import load_accuracy, load_latency

    acc = load_accuracy(data_dir)["cifar10"]
    lat = load_latency(data_dir)["raspi4"]
    _, d = run_search_dir(tmp_path, "r", searcher="regularized_evolution", queries=40, latency_ms=None)
    hist = read_rows(d / "history.csv")
    for r in hist:
        assert float(r["accuracy"]) == acc[int(r["index"])] and float(r["latency_ms"]) == lat[int(r["index"])]
    front = read_rows(d / "pareto.csv")
    pts = [(float(r["accuracy"]), float(r["latency_ms"])) for r in hist]
    for r in front:
        a, l = float(r["accuracy"]), float(r["latency_ms"])
        assert not any(a2 >= a and l2 <= l and (a2 > a or l2 < l) for a2, l2 in pts)


def test_energy_is_a_third_objective_and_constraint(tmp_path):
    summary, d = run_search_dir(tmp_path, "e", searcher="nsga2", device="pi5_onnx", dataset="cifar100",
                      latency_ms=None, queries=30)
    assert summary["objectives"] == ["error", "latency_ms", "energy_mj"]
    assert "energy_mj" in read_rows(d / "history.csv")[0]


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


@pytest.fixture(scope="module")
def problem(data_dir):
    return build_setup(make_search_cfg()).problem


_INTS_GE1 = {
    "ganas": ("n_init", "batch_size", "top_k", "hidden", "d_steps", "n_candidates", "candidate_tries"),
    "agnet": ("n_init", "batch_size", "latent", "hidden", "pretrain_samples", "guide_samples", "n_candidates",
              "candidate_tries", "acq_candidates", "ehvi_samples", "surrogate_members", "surrogate_hidden",
              "surrogate_steps"),
    "lanas": ("n_init", "relearn_every", "batch_size", "surrogate_every", "n_candidates", "sample_tries"),
    "mobo": ("n_init", "batch_size", "n_candidates", "mc_samples", "fit_iters"),
    "lamoo": ("n_init", "relearn_every", "batch_size", "n_candidates", "sample_tries", "mc_samples", "fit_iters"),
}
BAD_OPTIONS = [(name, field, 0) for name, fields in _INTS_GE1.items() for field in fields] + [
    ("ganas", "lr", -1.0), ("ganas", "lr", 0.0), ("ganas", "lr", float("nan")), ("ganas", "lr", "fast"),
    ("ganas", "n_init", 2.5), ("ganas", "g_rounds", -1), ("ganas", "ppo_epochs", -1), ("ganas", "g_samples", 1),
    ("ganas", "clip", 0.0), ("ganas", "clip", 1.0), ("ganas", "entropy_coef", -0.01),
    ("ganas", "infeasible_reward", float("-inf")),
    ("agnet", "lr", -1.0), ("agnet", "lr", 0.0), ("agnet", "tau", 0.0), ("agnet", "tau", -1.0),
    ("agnet", "tau", float("inf")), ("agnet", "weight_k", 0.0), ("agnet", "guide_weight", -0.5),
    ("agnet", "pretrain_steps", -1), ("agnet", "finetune_steps", -1), ("agnet", "guide_steps", -1),
    ("agnet", "batch_size", True),
    ("lanas", "depth", -1), ("lanas", "min_split", 1), ("lanas", "cp", -0.1), ("lanas", "cp", float("nan")),
    ("lanas", "l2", 0.0), ("lanas", "l2", -1.0), ("lanas", "surrogate", "yes"),
    ("mobo", "local", "yes"), ("mobo", "n_candidates", 2.5), ("mobo", "n_screen", -1), ("lamoo", "n_screen", -1),
    ("mobo", "baseline_layers", 0), ("lamoo", "warm_start", "often"),
    ("lamoo", "depth", -1), ("lamoo", "min_split", 1), ("lamoo", "cp", -0.1), ("lamoo", "l2", 0.0),
]


@pytest.mark.parametrize("searcher, option, value", BAD_OPTIONS)
def test_bad_searcher_option_value_is_a_config_error_naming_it(problem, searcher, option, value):
    """Each bad numeric option fails in the constructor with ConfigError (never torch's or numpy's)."""
    from hwnas.errors import ConfigError

    cfg = make_search_cfg(searcher=searcher, **{option: value})
    with pytest.raises(ConfigError, match=rf"^searcher\.{option} must be .*, got {re.escape(repr(value))}$"):
        make_searcher(cfg.searcher, problem, 0)


def test_boundary_searcher_option_values_are_accepted(problem):
    """The least allowed values (0 switches a training stage off) construct and ask."""
    for name, kw in [
        ("ganas", dict(g_rounds=0, ppo_epochs=0, g_samples=2, entropy_coef=0.0, n_init=1, batch_size=1)),
        ("agnet", dict(pretrain_steps=0, finetune_steps=0, guide_steps=0, guide_weight=0.0, pretrain_samples=1,
                       n_init=1, batch_size=1)),
        ("lanas", dict(depth=0, min_split=2, cp=0.0, n_init=1, batch_size=1, l2=1e-6)),
        ("mobo", dict(n_init=1, batch_size=1, n_candidates=1, mc_samples=1, fit_iters=1)),
        ("lamoo", dict(depth=0, min_split=2, cp=0.0, n_init=1, batch_size=1, n_candidates=1, mc_samples=1,
                       fit_iters=1)),
    ]:
        searcher = make_searcher(make_search_cfg(searcher=name, **kw).searcher, problem, 0)
        assert len(searcher.ask()) == 1, name


def _out_of_bounds(cfg_type):
    """(option, bad value, what the message must name) for every bounded or choice option."""
    from dataclasses import fields

    default = cfg_type()
    for f in fields(cfg_type):
        rule = f.metadata.get("rule")
        if rule is None:
            continue
        if rule.choices is not None:
            yield f.name, "no-such-choice", rule.choices[0]
            continue
        step = 1 if isinstance(f.default, int) else 0.5
        for bound, open_, sign in ((rule.min, rule.min_open, -1), (rule.max, rule.max_open, +1)):
            if bound is None:
                continue
            limit = getattr(default, bound) if isinstance(bound, str) else bound
            yield f.name, limit if open_ else limit + sign * step, str(bound)


OUT_OF_BOUNDS = [(name, key, value, named) for name in SEARCHERS.names()
                 for key, value, named in _out_of_bounds(SEARCHERS.get(name).config)]


def test_every_searcher_has_bounded_options():
    assert {name for name, *_ in OUT_OF_BOUNDS} == set(SEARCHERS.names())


@pytest.mark.parametrize("searcher, option, value, named", OUT_OF_BOUNDS)
def test_out_of_bound_option_is_a_config_error_naming_key_bound_and_value(problem, searcher, option, value, named):
    from hwnas.errors import ConfigError

    cfg = make_search_cfg(searcher=searcher, **{option: value})
    with pytest.raises(ConfigError, match=rf"^searcher\.{option} must be .*{re.escape(named)}.*, got {re.escape(repr(value))}$"):
        make_searcher(cfg.searcher, problem, 0)


@pytest.mark.parametrize("override, message", [
    ("searcher=nsga2 searcher.pop_size=0", "searcher.pop_size must be an integer >= 1, got 0"),
    ("searcher=random searcher.batch_size=0", "searcher.batch_size must be an integer >= 1, got 0"),
    ("searcher=lamoo searcher.inner=bogus", "searcher.inner must be one of qnehvi, random, got 'bogus'"),
    ("searcher=mobo searcher.n_candidates=0", "searcher.n_candidates must be an integer >= 1, got 0"),
])
def test_out_of_bound_option_through_the_app_is_one_line_and_exit_2(tmp_path, override, message):
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.search", *override.split(), "budget.queries=5",
                        "output.progress=false", "output.plot=false", f"hydra.run.dir={tmp_path / 'run'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    assert r.stderr.strip() == f"hwnas: error: {message}"
    assert not (tmp_path / "run" / "history.csv").exists()
