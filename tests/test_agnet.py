import generative_checks as gc
import pytest
import torch
from conftest import make_search_cfg, run_search_dir

from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher

SMALL = dict(pretrain_steps=100, pretrain_samples=500, finetune_steps=10, guide_steps=3, n_candidates=128, surrogate_steps=50)


@pytest.fixture(autouse=True)
def _user_home(tmp_path, monkeypatch):
    """The pretrained-generator cache goes to a fresh HWNAS_HOME, never into ~/.cache."""
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_seeded_determinism_budget_and_feasible_front(tmp_path):
    gc.check_determinism_budget_front(tmp_path, "agnet", **SMALL)


def test_front_without_budget(tmp_path):
    gc.check_no_budget_front(tmp_path, "agnet", **SMALL)


def test_energy_is_a_third_objective(tmp_path):
    gc.check_energy(tmp_path, "agnet", **SMALL)


def test_replay_mid_batch_matches():
    gc.check_replay_mid_batch("agnet", **SMALL)


def test_resume_after_sigkill(tmp_path):
    gc.check_sigkill_resume(tmp_path, "agnet", "searcher.pretrain_steps=100", "searcher.surrogate_steps=50")


def test_global_torch_rng_untouched_and_infeasible_weighs_zero(data_dir):
    cfg = make_search_cfg(searcher="agnet", n_init=4, batch_size=4, **SMALL)
    s = build_setup(cfg)
    state = torch.random.get_rng_state()
    g = make_searcher(cfg.searcher, s.problem, 0)
    feasible = s.problem.feasible_pool()[:4]
    infeasible = next(a for a in s.space.enumerate() if not s.problem.is_feasible(a))
    evs = [s.problem.make_evaluation(a, 60.0 + i) for i, a in enumerate(feasible)]
    evs.append(Evaluation(infeasible, 99.9, 0.1, 500.0, None, False))
    g.tell(evs)
    trained = []
    fit = g.vae.fit
    g.vae.fit = lambda X, w, *a, **k: (trained.append((X, w)), fit(X, w, *a, **k))[1]
    batch = g.ask()
    X, w = trained[0]
    assert len(X) == 4 and s.space.to_vector(infeasible).tolist() not in X.tolist()  # zero weight
    assert bool((w[:-1] >= w[1:]).all())  # weighted toward the best
    assert len(batch) == 4 and all(s.problem.is_worth_querying(a) and a not in g.seen - set(batch) for a in batch)
    assert torch.equal(state, torch.random.get_rng_state())


def _count_pretraining(monkeypatch):
    from hwnas.searchers.agnet_generator import CategoricalVAE

    calls = []
    fit = CategoricalVAE.fit

    def spy(self, X, weights, steps, *a, **k):
        if weights is None:  # pretraining is the only unweighted fit
            calls.append(steps)
        return fit(self, X, weights, steps, *a, **k)

    monkeypatch.setattr(CategoricalVAE, "fit", spy)
    return calls


def test_pretrained_generator_is_cached_and_a_cached_run_is_identical(tmp_path, _user_home, monkeypatch):
    calls = _count_pretraining(monkeypatch)
    kw = dict(searcher="agnet", queries=30, seed=1, **SMALL)
    _, d1 = run_search_dir(tmp_path, "first", **kw)
    files = sorted((_user_home / "cache" / "agnet").glob("pretrained-*.pt"))
    assert len(files) == 1 and calls == [100]
    _, d2 = run_search_dir(tmp_path, "cached", **kw)
    assert calls == [100]  # the second run did not pretrain
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    # Another seed is another generator: its own file.
    run_search_dir(tmp_path, "seed2", **dict(kw, seed=2, queries=21))
    assert len(list((_user_home / "cache" / "agnet").glob("pretrained-*.pt"))) == 2 and calls == [100, 100]


def test_corrupt_cache_is_ignored_with_a_warning_and_rebuilt(tmp_path, _user_home, monkeypatch):
    kw = dict(searcher="agnet", queries=25, seed=3, **SMALL)
    _, d1 = run_search_dir(tmp_path, "first", **kw)
    (path,) = (_user_home / "cache" / "agnet").glob("pretrained-*.pt")
    path.write_bytes(b"not a torch file")
    calls = _count_pretraining(monkeypatch)
    with pytest.warns(UserWarning, match=r"ignoring unreadable AG-Net cache .*pretraining again"):
        _, d2 = run_search_dir(tmp_path, "rebuilt", **kw)
    assert calls == [100]
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    assert torch.load(path, weights_only=True).keys() == {"vae", "opt", "gen"}  # rewritten whole


def test_pretraining_shows_a_progress_bar_only_when_asked(capsys, data_dir):
    cfg = make_search_cfg(searcher="agnet", **dict(SMALL, pretrain_steps=40))
    s = build_setup(cfg)
    make_searcher(cfg.searcher, s.problem, 0)
    assert "pretraining" not in capsys.readouterr().err
    make_searcher(cfg.searcher, s.problem, 5, progress=True)
    err = capsys.readouterr().err
    assert "agnet: pretraining the generator" in err and "40/40" in err and "step/s" in err
