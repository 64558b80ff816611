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
    """The batch after the initial design is the greedy qLogNEHVI pick over the candidates,
    and the GP sees the encoding only: latency enters as the known columns of the candidates."""
    import hwnas.searchers._botorch as B

    cfg = make_search_cfg(searcher="mobo", queries=40, latency_ms=None, n_init=10, batch_size=3, **FAST["mobo"])
    s = build_setup(cfg)
    mobo = make_searcher(cfg.searcher, s.problem, 0)
    while len(mobo.evals) < 10:
        mobo.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in mobo.ask()])
    seen = {}
    real = B.greedy_picks

    def spy(acq, choices, q, screen):
        out = real(acq, choices, q, screen)
        seen.update(acq=acq, q=q, choices=choices, picked=choices[out])
        return out

    monkeypatch.setattr(B, "greedy_picks", spy)
    batch = mobo.ask()
    assert type(seen["acq"]).__name__ == "qLogNoisyExpectedHypervolumeImprovement" and seen["q"] == 3
    assert len(batch) == 3 and len(set(batch)) == 3 and not set(batch) & {e.arch for e in mobo.evals}
    assert s.problem.worth_querying(batch).all()
    d = len(s.space.encode(batch[0]))
    gp = seen["acq"].model  # the GP alone: the known columns enter through the MC objective (cache_root)
    assert gp.covar_module.active_dims.tolist() == list(range(d))  # the latency column is not a GP input
    assert seen["acq"]._cache_root
    picked = seen["picked"].numpy()
    np.testing.assert_array_equal(picked[:, :d], np.stack([s.space.encode(a) for a in batch]))  # same order
    np.testing.assert_allclose(picked[:, d], mobo.known(batch)[:, 0])  # known column: normalised latency
    assert seen["choices"].shape[0] > 3  # a real choice among candidates


@pytest.mark.parametrize("k", [1, 2])
def test_greedy_picks_are_botorchs_sequential_greedy_and_screen_limits_the_later_picks(k):
    """greedy_picks without a screen is optimize_acqf_discrete's batch; with a screen, the first
    pick is the same and the later ones come from the best `screen` single-point values."""
    import torch
    from botorch.acquisition.multi_objective.logei import (
        qLogNoisyExpectedHypervolumeImprovement,
    )
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler

    from hwnas.searchers._botorch import _known_objective, fit_gp, greedy_picks

    rng = np.random.default_rng(0)
    d, n, c = 6, 30, 80
    X = rng.integers(0, 2, (n, d)).astype(float)
    err = X @ rng.normal(size=d) + rng.normal(scale=0.1, size=n) + 5
    K = rng.random((n, k))
    Xc, Kc = rng.integers(0, 2, (c, d)).astype(float), rng.random((c, k))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        gp, _ = fit_gp(X, err, K, 20, None)

    def acq():
        return qLogNoisyExpectedHypervolumeImprovement(
            gp, ref_point=torch.tensor([-float(np.median(err))] + [-1.0] * k, dtype=torch.float64),
            X_baseline=gp.train_inputs[0], sampler=SobolQMCNormalSampler(torch.Size([16]), seed=1),
            objective=_known_objective(d, k), prune_baseline=False)

    choices = torch.tensor(np.hstack([Xc, Kc]))
    ref, _ = optimize_acqf_discrete(acq(), q=4, choices=choices, unique=True)
    ref_idx = [int(np.nonzero((choices == row).all(dim=1).numpy())[0][0]) for row in ref]
    assert greedy_picks(acq(), choices, 4, 0) == ref_idx
    with torch.no_grad():
        single = acq()(choices.unsqueeze(-2)).numpy()
    top = set(np.argsort(-single)[:5].tolist())
    screened = greedy_picks(acq(), choices, 4, 5)
    assert screened[0] == ref_idx[0] and set(screened) <= top


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


def test_baseline_is_the_first_non_dominated_layers_of_the_feasible_rows():
    from hwnas.searchers._botorch import baseline_rows

    err = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 5.0])
    K = np.array([[3.0], [2.0], [1.0], [0.5], [0.5], [5.0]])
    base = np.array([True, True, True, True, False, True])  # row 4 would dominate all but is infeasible
    assert baseline_rows(err, K, base, layers=1).tolist() == [0, 1, 2, 3]
    assert baseline_rows(err, K, base, layers=2).tolist() == [0, 1, 2, 3, 5]


@pytest.mark.parametrize("warm_start", [False, True])
def test_each_fit_starts_from_the_priors_or_the_previous_fit_and_reports_its_stage(data_dir, monkeypatch, warm_start):
    import torch

    import hwnas.searchers._botorch as B

    cfg = make_search_cfg(searcher="mobo", queries=40, latency_ms=None, n_init=10, batch_size=3,
                          warm_start=warm_start, **FAST["mobo"])
    s = build_setup(cfg)
    mobo = make_searcher(cfg.searcher, s.problem, 0)
    calls, stages = [], []
    real_fit, real_propose = B.fit_gp, B.propose

    def spy(X, err, K, fit_iters, warm, cards=None):
        out = real_fit(X, err, K, fit_iters, warm, cards)
        calls.append((warm, out[1]))
        return out

    monkeypatch.setattr(B, "fit_gp", spy)
    monkeypatch.setattr(B, "propose", lambda *a, **kw: real_propose(*a, **{**kw, "stage": stages.append}))
    while len(mobo.evals) < 10:
        mobo.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in mobo.ask()])
    assert not calls
    for _ in range(2):
        mobo.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in mobo.ask()])
    assert len(calls) == 2  # two asks after the initial design of 10
    assert calls[0][0] is None  # the first fit starts from the priors
    warm = calls[1][0]
    if not warm_start:  # the default: every fit from the priors' modes
        assert warm is None
    else:
        assert warm is not None
        for name in warm.state:  # ... the second from exactly what the first fit ended at
            for key, v in warm.state[name].items():
                torch.testing.assert_close(v, calls[0][1].state[name][key])
    assert [t.split(" ")[0] for t in stages] == ["GP", "qLogNEHVI"] * 2


@pytest.mark.parametrize("searcher", ["mobo", "lamoo"])
def test_n_screen_baseline_layers_and_warm_start_reach_the_picker(data_dir, searcher):
    cfg = make_search_cfg(searcher=searcher, queries=20, latency_ms=None, n_screen=7, baseline_layers=2,
                          warm_start=True)
    settings = make_searcher(cfg.searcher, build_setup(cfg).problem, 0).picker.settings
    assert (settings.screen, settings.layers, settings.warm) == (7, 2, True)


def test_categorical_kernel_is_exp_of_the_weighted_count_of_differing_choices():
    import torch

    from hwnas.searchers._botorch import OneHotCategoricalKernel

    cards = [3, 2, 4]
    rng = np.random.default_rng(1)
    V = np.stack([rng.integers(0, c, 7) for c in cards], axis=1)  # 7 architectures as choice indices
    onehot = np.hstack([np.eye(c)[V[:, p]] for p, c in enumerate(cards)])
    X = torch.tensor(np.hstack([onehot, rng.random((7, 2))]))  # + 2 known columns the kernel must ignore
    kern = OneHotCategoricalKernel.make(cards, onehot.shape[1]).double()
    ls = np.array([0.5, 2.0, 1.0])
    kern.lengthscale = torch.tensor(ls)
    want = np.exp(-((V[:, None, :] != V[None, :, :]) / ls).sum(-1))
    with torch.no_grad():
        np.testing.assert_allclose(kern(X, X).to_dense().numpy(), want, rtol=1e-12)
        np.testing.assert_allclose(kern(X, X, diag=True).numpy(), np.ones(7))


def test_kernel_option_reaches_the_gp(data_dir, monkeypatch):
    import hwnas.searchers._botorch as B

    cfg = make_search_cfg(searcher="lamoo", queries=30, latency_ms=None, n_init=8, kernel="categorical",
                          **FAST["lamoo"])
    s = build_setup(cfg)
    la = make_searcher(cfg.searcher, s.problem, 0)
    kernels = []
    real = B.fit_gp
    monkeypatch.setattr(B, "fit_gp", lambda *a, **kw: kernels.append(type((out := real(*a, **kw))[0].covar_module))
                        or out)
    while not kernels:
        la.tell([s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in la.ask()])
    assert kernels[0].__name__ == "_Kernel" and kernels[0].__qualname__.startswith("OneHotCategoricalKernel")
