import numpy as np
import pytest
from pymoo.indicators.hv import HV

from hwnas.data.nb201 import load_accuracy, load_latency
from hwnas.pareto import (
    FrontScorer,
    hypervolume,
    hypervolume_2d,
    nd_ranks,
    non_dominated,
)


def test_non_dominated_matches_pymoo_sorting():
    rng = np.random.default_rng(0)
    for n, m in ((50, 2), (200, 2), (120, 3)):
        F = rng.random((n, m))
        F[5] = F[3]  # a duplicate stays non-dominated with its twin
        assert (non_dominated(F) == (nd_ranks(F) == 0)).all()


def test_2d_hypervolume_against_pymoo_and_by_hand():
    assert hypervolume_2d(np.array([[0.5, 0.5]]), np.ones(2)) == pytest.approx(0.25)
    assert hypervolume_2d(np.array([[0.0, 0.5], [0.5, 0.0]]), np.ones(2)) == pytest.approx(0.75)
    assert hypervolume_2d(np.array([[1.5, 0.1]]), np.ones(2)) == 0.0  # outside the box adds nothing
    rng = np.random.default_rng(1)
    for _ in range(20):
        F = rng.random((30, 2)) * 1.2
        inside = F[np.all(F < 1, axis=1)]
        assert hypervolume(F, np.ones(2)) == pytest.approx(HV(ref_point=np.ones(2))(inside) if len(inside) else 0.0)


def test_nd_hypervolume_reduces_to_2d():
    rng = np.random.default_rng(2)
    F = rng.random((40, 2))
    F3 = np.column_stack([F, np.zeros(len(F))])
    assert hypervolume(F3, np.ones(3)) == pytest.approx(hypervolume_2d(F, np.ones(2)))
    # A Monte Carlo estimate agrees with the exact 3-D value.
    G = rng.random((15, 3))
    pts = rng.random((200_000, 3))
    dominated = np.zeros(len(pts), dtype=bool)
    for g in G:
        dominated |= np.all(pts >= g, axis=1)
    assert hypervolume(G, np.ones(3)) == pytest.approx(dominated.mean(), abs=0.01)


@pytest.fixture(scope="module")
def scorer(data_dir):
    acc = load_accuracy(data_dir)["cifar10"].to_numpy()
    lat = load_latency(data_dir)["raspi4"].to_numpy()
    return FrontScorer(100 - acc, lat, latency_budget=20.0), acc, lat


def test_scoring_against_the_truth(scorer):
    sc, acc, lat = scorer
    everything = np.arange(len(acc))
    full = sc.score(everything)
    assert full.hv_ratio == pytest.approx(1.0) and full.front_regret == pytest.approx(0.0)
    assert sc.score(sc.true_front()).hv_ratio == pytest.approx(1.0)
    assert sc.score(sc.true_front()).front_regret == pytest.approx(0.0)
    none = sc.score(np.array([], dtype=int))
    assert none.hypervolume == 0.0 and none.hv_ratio == 0.0 and none.front_regret > 0
    # Infeasible architectures add nothing, however accurate.
    best_infeasible = int(np.argmax(np.where(lat > 20.0, acc, -1)))
    assert sc.score(np.array([best_infeasible])).hypervolume == 0.0
    # Adding points never lowers the hypervolume nor raises the regret.
    rng = np.random.default_rng(0)
    a = rng.choice(len(acc), 100, replace=False)
    b = np.concatenate([a, rng.choice(len(acc), 100, replace=False)])
    assert sc.score(b).hv_ratio >= sc.score(a).hv_ratio
    assert sc.score(b).front_regret <= sc.score(a).front_regret


def test_front_regret_definition(scorer):
    sc, acc, lat = scorer
    feas = np.nonzero(lat <= 20.0)[0]
    budgets = np.quantile(lat[feas], np.linspace(0.1, 1.0, 10))
    # Evaluating only the most accurate feasible architecture: regret 0 at the budgets above its
    # latency, the gap between best and median under each tighter one.
    star = feas[np.argmax(acc[feas])]
    expected = []
    for b in budgets:
        pool = feas[lat[feas] <= b]
        got = acc[star] if lat[star] <= b else np.median(acc[pool])
        expected.append(acc[pool].max() - got)
    assert sc.front_regret(np.array([star])) == pytest.approx(np.mean(expected))


def _crowding_reference(F):
    """Deb et al.'s definition, written out: extremes of each objective inf, else the mean over
    objectives of the normalised gap between the two neighbours."""
    n, m = F.shape
    d = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        d[order[0]] = d[order[-1]] = np.inf
        for k in range(1, n - 1):
            d[order[k]] += (F[order[k + 1], j] - F[order[k - 1], j]) / span / m
    return d


def test_crowding_distance_is_pymoo_nsga2s_and_matches_the_definition():
    from hwnas.pareto import crowding_distance

    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 1, 12))
    F2 = np.column_stack([x, 1 - np.sqrt(x)])  # a 2-D front
    w = rng.dirichlet(np.ones(3), 15)
    F3 = w / np.linalg.norm(w, axis=1, keepdims=True)  # a 3-D front
    for F in (F2, F3):
        got, want = crowding_distance(F), _crowding_reference(F)
        assert np.array_equal(np.isinf(got), np.isinf(want)) and np.isinf(got).sum() >= 2
        fin = np.isfinite(want)
        assert np.allclose(got[fin], want[fin], rtol=1e-12)
    assert np.isinf(crowding_distance(F2[:2])).all() and len(crowding_distance(np.zeros((0, 2)))) == 0
