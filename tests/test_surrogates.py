import numpy as np
import pytest
import torch

from hwnas.pareto import hypervolume
from hwnas.surrogates import (
    EnsembleSurrogate,
    JointSurrogate,
    expected_improvement,
    feasible_score,
    hv_improvement,
    upper_confidence,
)


def _easy(n=400, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, (n, d)).astype(np.float32)
    y = X @ rng.normal(size=d) + 0.3 * np.sin(X[:, :4].sum(1))
    return X, y


def test_fit_predict_shapes_std_and_rank_correlation():
    from scipy.stats import kendalltau

    X, y = _easy()
    m = EnsembleSurrogate(seed=3).fit(X[:150], y[:150])
    mean, std = m.predict(X[150:])
    assert mean.shape == std.shape == (250,) and mean.dtype == np.float64
    assert np.all(std > 0) and np.all(np.isfinite(mean))
    assert kendalltau(mean, y[150:])[0] > 0.7
    one_mean, one_std = m.predict(X[0])
    assert one_mean.shape == (1,) and one_std.shape == (1,)


def test_determinism_by_seed_and_no_global_rng():
    X, y = _easy(200)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = EnsembleSurrogate(seed=5).fit(X[:80], y[:80]).predict(X[80:])
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    torch.manual_seed(999)  # and does not matter
    b = EnsembleSurrogate(seed=5).fit(X[:80], y[:80]).predict(X[80:])
    c = EnsembleSurrogate(seed=6).fit(X[:80], y[:80]).predict(X[80:])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_predict_torch_is_differentiable_and_matches_predict():
    X, y = _easy(100)
    m = EnsembleSurrogate(seed=0, steps=50).fit(X, y)
    Xt = torch.from_numpy(X[:7]).requires_grad_()
    mean, std = m.predict_torch(Xt)
    (mean.sum() + std.sum()).backward()
    assert Xt.grad is not None and Xt.grad.shape == (7, X.shape[1]) and torch.any(Xt.grad != 0)
    np.testing.assert_allclose(mean.detach().numpy(), m.predict(X[:7])[0], rtol=1e-5, atol=1e-5)


def test_bad_input_and_unfitted():
    with pytest.raises(RuntimeError, match="before fit"):
        EnsembleSurrogate().predict(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        EnsembleSurrogate().fit(np.zeros((3, 2)), np.zeros(4))


def test_acquisitions_shapes_and_signs():
    mean, std = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 2.0])
    ei = expected_improvement(mean, std, best=2.0)
    assert ei.shape == (3,) and np.all(ei >= 0) and ei[0] > ei[1]
    ucb = upper_confidence(mean, std, beta=1.0)
    assert np.allclose(ucb, [-0.5, -1.5, -1.0])
    fs = feasible_score(mean, std, np.array([True, False, True]))
    assert fs[1] == -np.inf and np.isfinite(fs[[0, 2]]).all()


@pytest.mark.parametrize("m", [2, 3])
def test_hv_improvement_matches_brute_force(m):
    rng = np.random.default_rng(m)
    front, ref = rng.random((8, m)), np.full(m, 1.1)
    me, se, known = rng.random(5), np.full(5, 0.1), rng.random((5, m - 1))
    got = hv_improvement(me, se, known, front, ref, 40, np.random.default_rng(3))
    z = np.random.default_rng(3).standard_normal(40)
    base = hypervolume(front, ref)
    want = [np.mean([hypervolume(np.vstack([front, [e, *known[i]]]), ref) - base for e in me[i] + se[i] * z])
            for i in range(5)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.all(got >= 0)


def test_joint_surrogate_predict_and_score(data_dir):
    from conftest import make_search_cfg

    from hwnas.search import build_setup

    s = build_setup(make_search_cfg(latency_ms=20.0))
    pool = s.problem.feasible_pool()
    rng = np.random.default_rng(0)
    archs = [pool[i] for i in rng.choice(len(pool), 60, replace=False)]
    evs = [s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in archs[:40]]
    js = JointSurrogate(s.problem, seed=1)
    infeasible = next(a for a in s.space.enumerate() if not s.problem.is_feasible(a))
    cands = archs[40:] + [infeasible]
    pred = js.fit(evs).predict(cands)
    assert set(pred) == {"mean_err", "std_err", "latency_ms", "feasible"}
    assert all(v.shape == (21,) for v in pred.values()) and not pred["feasible"][-1]
    for kind in ("ehvi", "ei"):
        sc = js.score(cands, evs, kind=kind)
        assert sc.shape == (21,) and sc[-1] == -np.inf and np.all(sc[:-1] >= 0)
        assert np.array_equal(sc, JointSurrogate(s.problem, seed=1).score(cands, evs, kind=kind))


def test_joint_surrogate_with_energy_scores_three_objectives(data_dir):
    from conftest import make_search_cfg

    from hwnas.search import build_setup

    s = build_setup(make_search_cfg(device="pi5_onnx", dataset="cifar100", latency_ms=None))
    pool = s.problem.feasible_pool()
    evs = [s.problem.make_evaluation(a, s.evaluator.evaluate(a)[0]) for a in pool[:30]]
    js = JointSurrogate(s.problem, seed=0, steps=50)
    pred = js.fit(evs).predict(pool[30:40])
    assert "energy_mj" in pred and pred["energy_mj"].shape == (10,)
    sc = js.score(pool[30:40], evs, kind="ehvi")
    assert sc.shape == (10,) and np.all(np.isfinite(sc)) and np.all(sc >= 0)
