import generative_checks as gc
import torch
from conftest import make_search_cfg

from hwnas.problem import Evaluation
from hwnas.search import build_setup, make_searcher

SMALL = dict(d_steps=10, g_rounds=2, g_samples=64, ppo_epochs=2, n_candidates=128)


def test_seeded_determinism_budget_and_feasible_front(tmp_path):
    gc.check_determinism_budget_front(tmp_path, "ganas", **SMALL)


def test_front_without_budget(tmp_path):
    gc.check_no_budget_front(tmp_path, "ganas", **SMALL)


def test_energy_is_a_third_objective(tmp_path):
    gc.check_energy(tmp_path, "ganas", **SMALL)


def test_replay_mid_batch_matches():
    gc.check_replay_mid_batch("ganas", **SMALL)


def test_resume_after_sigkill(tmp_path):
    gc.check_sigkill_resume(tmp_path, "ganas", "searcher.d_steps=10", "searcher.g_samples=64")


def test_global_torch_rng_untouched_and_infeasible_never_real(data_dir):
    cfg = make_search_cfg(searcher="ganas", n_init=4, top_k=3, batch_size=4, **SMALL)
    s = build_setup(cfg)
    state = torch.random.get_rng_state()
    g = make_searcher(cfg.searcher, s.problem, 0)
    feasible = s.problem.feasible_pool()[:4]
    infeasible = next(a for a in s.space.enumerate() if not s.problem.is_feasible(a))
    evs = [s.problem.make_evaluation(a, 60.0 + i) for i, a in enumerate(feasible)]
    evs.append(Evaluation(infeasible, 99.9, 0.1, 500.0, None, False))
    g.tell(evs)
    real = []
    g._train_discriminator = lambda r: real.extend(r)  # record the "real" set
    batch = g.ask()
    assert infeasible not in real and len(real) == 3
    told = {e.arch for e in g.evals}
    assert batch and all(s.problem.is_worth_querying(a) and a not in told for a in batch)
    # A generator that samples only evaluated architectures still gets none of them re-queried.
    X_told = torch.tensor([s.space.to_vector(a).tolist() for a in feasible])
    g.policy.sample = lambda n, gen: X_told.repeat(n // len(X_told) + 1, 1)[:n]
    again = g.ask()
    assert len(again) == 4 and not set(again) & (told | set(batch))
    # The policy penalises what it may not query.
    X = torch.tensor([s.space.to_vector(infeasible).tolist()])
    assert g._reward(X).item() == cfg.searcher.infeasible_reward
    assert torch.equal(state, torch.random.get_rng_state())


def test_accuracy_objective_ranks_by_error_and_bad_objective_is_clear(data_dir):
    import pytest

    from hwnas.errors import ConfigError
    from hwnas.searchers._generative import rank_order

    cfg = make_search_cfg(searcher="ganas", latency_ms=None)
    s = build_setup(cfg)
    pool = s.problem.feasible_pool()
    evs = [s.problem.make_evaluation(a, acc) for a, acc in zip(pool[:5], (70.0, 90.0, 80.0, 60.0, 85.0))]
    assert [evs[i].accuracy for i in rank_order(evs, "accuracy")] == [90.0, 85.0, 80.0, 70.0, 60.0]
    assert set(rank_order(evs, "pareto")) == set(range(5))
    for name in ("ganas", "agnet"):
        with pytest.raises(ConfigError, match="objective"):
            make_searcher(make_search_cfg(searcher=name, objective="best").searcher, s.problem, 0)
