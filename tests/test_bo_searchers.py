"""searcher=mobo and searcher=lamoo (BoTorch): determinism, budget, feasibility, energy, resume
after kill -9, options, and that the BoTorch pieces do what the docs say."""
import numpy as np
import pytest
from conftest import make_search_cfg
from generative_checks import (
    check_determinism_budget_front,
    check_energy,
    check_replay_mid_batch,
    check_seeded_without_a_pool,
    check_sigkill_resume,
)

from hwnas.search import build_setup, make_searcher

# Small candidate sets and few GP iterations keep each search a few seconds.
FAST = {"mobo": {"n_candidates": 100, "fit_iters": 15, "mc_samples": 8},
        "lamoo": {"n_candidates": 100, "fit_iters": 15, "mc_samples": 8}}
SEARCHERS = [("mobo", FAST["mobo"]), ("lamoo", FAST["lamoo"]), ("lamoo", {"inner": "random"})]


@pytest.mark.parametrize("searcher, kw", SEARCHERS)
def test_seeded_determinism_budget_and_feasibility_under_a_latency_budget(tmp_path, searcher, kw):
    check_determinism_budget_front(tmp_path, searcher, queries=25, n_init=8, **kw)


@pytest.mark.parametrize("searcher", ["mobo", "lamoo"])
def test_energy_is_a_third_objective_and_its_budget_is_respected(tmp_path, searcher):
    check_energy(tmp_path, searcher, n_init=8, **FAST[searcher])


@pytest.mark.parametrize("searcher", ["mobo", "lamoo"])
def test_replaying_a_prefix_that_ends_mid_batch_gives_the_same_run(searcher):
    check_replay_mid_batch(searcher, n_init=8, **FAST[searcher])


@pytest.mark.parametrize("searcher", ["mobo", "lamoo"])
def test_resume_after_sigkill(tmp_path, searcher):
    opts = [f"searcher.{k}={v}" for k, v in FAST[searcher].items()]
    check_sigkill_resume(tmp_path, searcher, "searcher.n_init=10", *opts, budget=30, kill_at=15)


def test_mobo_asks_the_batch_qlognehvi_ranks_first(data_dir, monkeypatch):
    """The batch after the initial design is optimize_acqf_discrete's pick over the candidates,
    and the GP sees the encoding only: latency enters as the deterministic model's columns."""
    import botorch.optim

    cfg = make_search_cfg(searcher="mobo", queries=40, latency_ms=None, n_init=10, batch_size=3, **FAST["mobo"])
    s = build_setup(cfg)
    mobo = make_searcher(cfg.searcher, s.problem, 0)
    while len(mobo.evals) < 10:
        mobo.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in mobo.ask()])
    seen = {}
    real = botorch.optim.optimize_acqf_discrete

    def spy(acq, q, choices, **kw):
        out = real(acq, q=q, choices=choices, **kw)
        seen.update(acq=acq, q=q, choices=choices, picked=out[0])
        return out

    monkeypatch.setattr(botorch.optim, "optimize_acqf_discrete", spy)
    batch = mobo.ask()
    assert type(seen["acq"]).__name__ == "qLogNoisyExpectedHypervolumeImprovement" and seen["q"] == 3
    assert len(batch) == 3 and len(set(batch)) == 3 and not set(batch) & {e.arch for e in mobo.evals}
    assert s.problem.worth_querying(batch).all()
    d = len(s.space.encode(batch[0]))
    gp = seen["acq"].model.models[0]
    assert gp.covar_module.active_dims.tolist() == list(range(d))  # the latency column is not a GP input
    picked = seen["picked"].numpy()
    np.testing.assert_array_equal(picked[:, :d], np.stack([s.space.encode(a) for a in batch]))  # same order
    np.testing.assert_allclose(picked[:, d], mobo.known(batch)[:, 0])  # known column: normalised latency
    assert seen["choices"].shape[0] > 3  # a real choice among candidates


def test_lamoo_splits_on_dominance_number(data_dir):
    from hwnas.searchers.lamoo import dominance_numbers

    F = np.array([[0, 0], [1, 1], [0, 2], [2, 0], [2, 2]], dtype=float)
    assert dominance_numbers(F).tolist() == [0, 1, 1, 1, 4]
    cfg = make_search_cfg(searcher="lamoo", queries=60, latency_ms=None, inner="random", depth=2, min_split=6)
    s = build_setup(cfg)
    la = make_searcher(cfg.searcher, s.problem, 0)
    while s.evaluator.remaining > 0:
        la.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in la.ask()])
    la._build()
    assert not la.root.leaf
    # The root's good side holds the non-dominated samples (dominance number 0) and a larger hypervolume.
    nd = np.nonzero(dominance_numbers(la._F) == 0)[0]
    good = set(la.root.good.members)
    assert sum(i in good for i in nd) >= 0.8 * len(nd)
    assert la.root.good.value > la.root.bad.value


@pytest.mark.parametrize("searcher", ["mobo", "lamoo"])
def test_non_tabular_space_samples_candidates_worth_querying(data_dir, monkeypatch, searcher):
    """Without a feasible pool the candidates are constrained space samples (and, for mobo, the
    front's neighbours): every query is worth querying, and the run is still seeded."""
    check_seeded_without_a_pool(make_search_cfg(searcher=searcher, queries=22, latency_ms=20.0, n_init=8,
                                                **FAST[searcher]), monkeypatch)
