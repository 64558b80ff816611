import generative_checks as gc
import torch
from conftest import make_search_cfg

from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher

SMALL = dict(pretrain_steps=100, pretrain_samples=500, finetune_steps=10, guide_steps=3, n_candidates=128, surrogate_steps=50)


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
