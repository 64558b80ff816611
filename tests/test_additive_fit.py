"""Per-op costs fitted from whole-architecture latencies; cross-validation; device kind `fitted`."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.latency.additive_fit import (
    FEATURE_SETS,
    cross_validate,
    feature_matrix,
    fit_additive,
    live_edges,
    n_features,
    sample_indices,
)
from hwnas.spaces.nb201 import NB201Arch

ALL_OPS = np.array(list(itertools.product(range(5), repeat=6)), dtype=np.int64)  # every cell, code order


@pytest.mark.parametrize("kind", sorted(FEATURE_SETS))
def test_nnls_recovers_known_costs(kind):
    x, names = feature_matrix(ALL_OPS, kind)
    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 3.0, len(names))
    true[rng.choice(len(names), 2, replace=False)] = 0.0  # exact zeros are on the NNLS boundary
    model = fit_additive(ALL_OPS, x @ true, kind)
    np.testing.assert_allclose(model.weights, true, atol=1e-9)
    assert list(model.costs) == names and all(v >= 0 for v in model.costs.values())
    np.testing.assert_allclose(model.predict(ALL_OPS[:50]), (x @ true)[:50], atol=1e-9)


def test_recovers_costs_from_a_small_sample():
    idx = sample_indices(len(ALL_OPS), 40, seed=3)
    true = np.array([0.1, 2.0, 5.0, 1.0, 3.0])  # skip, conv1x1, conv3x3, pool, base
    y = feature_matrix(ALL_OPS, "counts")[0] @ true
    model = fit_additive(ALL_OPS[idx], y[idx], "counts")
    np.testing.assert_allclose(model.weights, true, atol=1e-9)
    np.testing.assert_allclose(model.predict(ALL_OPS), y, atol=1e-8)


def test_costs_are_never_negative():
    # Latency that falls with every conv: least squares would give convs negative costs.
    x, _ = feature_matrix(ALL_OPS, "counts")
    y = 30.0 - 2.0 * x[:, 1] - 3.0 * x[:, 2] + np.random.default_rng(1).normal(0, 0.5, len(x))
    for kind in FEATURE_SETS:
        model = fit_additive(ALL_OPS, y, kind)
        assert np.all(model.weights >= 0) and all(c >= 0 for c in model.costs.values())


def test_accepts_arch_objects_and_is_seeded():
    archs = [NB201Arch(tuple(int(o) for o in row)) for row in ALL_OPS[:30]]
    x, _ = feature_matrix(archs, "edge")
    np.testing.assert_array_equal(x, feature_matrix(ALL_OPS[:30], "edge")[0])
    np.testing.assert_array_equal(sample_indices(15625, 50, 7), sample_indices(15625, 50, 7))
    assert len(set(sample_indices(15625, 50, 7))) == 50


def test_path_features_match_the_space():
    live, connected = live_edges(ALL_OPS)
    archs = [NB201Arch(tuple(int(o) for o in row)) for row in ALL_OPS]
    assert np.array_equal(connected, [a.is_connected() for a in archs])
    # |conv~0|+|none~0|conv~1|+|none~0|none~1|none~2| has no path: nothing is live.
    assert not live[np.all(ALL_OPS == [3, 0, 3, 0, 0, 0], axis=1)].any()
    # |conv~0|+|pool~0|none~1|+|skip~0|conv~1|none~2|: 2<-0 leads nowhere (2->3 is none).
    row = np.all(ALL_OPS == [3, 4, 0, 1, 3, 0], axis=1)
    assert live[row].tolist() == [[True, False, False, True, True, False]]
    assert n_features("path") == 10 and n_features("counts") == 5 and n_features("edge") == 25


def test_cross_validation_sees_what_the_fit_cannot():
    idx = sample_indices(len(ALL_OPS), 60, seed=2)
    x, _ = feature_matrix(ALL_OPS[idx], "counts")
    exact = x @ np.array([0.1, 2.0, 5.0, 1.0, 3.0])
    cv = cross_validate(ALL_OPS[idx], exact, "counts", folds=5)
    assert cv["mape_pct"] == pytest.approx(0.0, abs=1e-6) and cv["kendall_tau"] == pytest.approx(1.0)
    # A latency the op counts do not explain (a product of two edges) shows up out of fold.
    odd = exact + 4.0 * (ALL_OPS[idx, 0] == 3) * (ALL_OPS[idx, 5] == 3)
    assert cross_validate(ALL_OPS[idx], odd, "counts")["mape_pct"] > 1.0
    assert cross_validate(ALL_OPS[idx], odd, "counts", seed=1) == cross_validate(ALL_OPS[idx], odd, "counts", seed=1)
    with pytest.raises(HwnasError, match="folds"):
        cross_validate(ALL_OPS[:3], np.ones(3), "counts", folds=5)


def test_fit_input_errors():
    with pytest.raises(HwnasError, match="unknown feature set"):
        fit_additive(ALL_OPS[:10], np.ones(10), "opcount")
    with pytest.raises(HwnasError, match="one latency per architecture"):
        fit_additive(ALL_OPS[:10], np.ones(9))
    with pytest.raises(HwnasError, match="finite and >= 0"):
        fit_additive(ALL_OPS[:3], np.array([1.0, -1.0, 2.0]))
    with pytest.raises(HwnasError, match="op ids must be integers 0..4"):
        fit_additive(np.full((3, 6), 7), np.ones(3))
    with pytest.raises(HwnasError, match="shape"):
        fit_additive(np.zeros((3, 5), np.int64), np.ones(3))


# --- device kind `fitted` ------------------------------------------------------------------
def _measurements(data_dir, tmp_path, n=80, key="index", name="meas.csv"):
    from hwnas.data.nb201 import load_latency

    df = load_latency(data_dir)
    idx = sample_indices(len(df), n, seed=0)
    sub = df.iloc[idx][["index", "arch", "raspi4"]].rename(columns={"raspi4": "latency_ms"})
    path = tmp_path / name
    sub[[key, "latency_ms"]].to_csv(path, index=False)
    return path, idx, sub["latency_ms"].to_numpy()


def _source(nb201, data_dir, path):
    from hwnas.config import DeviceConfig
    from hwnas.latency.sources import make_latency_source

    return make_latency_source(nb201, DeviceConfig(name="mydev", kind="fitted", path=str(path)), "cifar10", data_dir)


@pytest.mark.parametrize("key", ["index", "arch"])
def test_fitted_source_predicts_every_arch(nb201, data_dir, tmp_path, key):
    path, idx, lat = _measurements(data_dir, tmp_path, key=key)
    src = _source(nb201, data_dir, path)
    allv = src.all_latency()
    assert allv.shape == (15625,) and np.all(np.isfinite(allv)) and np.all(allv > 0)
    np.testing.assert_allclose(allv[idx], lat)  # measured architectures keep their values
    d = src.describe()
    assert d["measured"] == 80 and d["latency_model"]["features"] == "path"
    assert all(c >= 0 for c in d["latency_model"]["costs_ms"].values())
    assert set(d["latency_cv_fidelity"]) >= {"kendall_tau", "spearman_rho", "mape_pct", "within_10pct"}
    archs = [nb201.from_index(i) for i in (0, 100, 15624)]
    np.testing.assert_allclose(src.latency(archs), allv[[0, 100, 15624]])


def test_search_runs_on_a_fitted_device(nb201, data_dir, tmp_path):
    from conftest import make_search_cfg

    from hwnas.config import DeviceConfig
    from hwnas.search import search

    path, _, _ = _measurements(data_dir, tmp_path)
    cfg = make_search_cfg("random", latency_ms=20.0, queries=15)
    cfg.device = DeviceConfig(name="mydev", kind="fitted", path=str(path))
    run = tmp_path / "run"
    summary = search(cfg, run, progress=False, log=lambda *a, **k: None)
    assert summary["queries"] == 15 and summary["feasible_queries"] > 0
    assert (run / "history.csv").is_file() and (run / "pareto.csv").is_file()
    assert json.loads((run / "summary.json").read_text())["device"] == "mydev"


@pytest.mark.parametrize("content, message", [
    ("idx,latency_ms\n1,2.0\n", "needs a column 'index' or 'arch'"),
    ("index,lat\n1,2.0\n", "needs a column 'index' or 'arch' and a column 'latency_ms'"),
    ("index,latency_ms\n1,2.0\n2,3.0\n", "at least 10"),
    ("index,latency_ms\n1,2.0\n1,3.0\n", "line 3: architecture index 1 listed twice"),
    ("index,latency_ms\n1,2.0\n2,-3.0\n", "line 3: latency_ms must be a positive number"),
    ("index,latency_ms\n1,2.0\n2,fast\n", "line 3: column 'latency_ms' has 'fast'"),
    ("index,latency_ms\n1,2.0\n99999,3.0\n", "line 3: index 99999 is not in 0..15624"),
    ("arch,latency_ms\n|conv~0|+|x|,2.0\n", "line 2: malformed NAS-Bench-201 architecture"),
])
def test_fitted_source_bad_csv(nb201, data_dir, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(HwnasError, match=message):
        _source(nb201, data_dir, path)


def test_fitted_source_config_errors(nb201, data_dir, tmp_path):
    with pytest.raises(HwnasError, match="does not exist"):
        _source(nb201, data_dir, tmp_path / "nothing.csv")
    with pytest.raises(HwnasError, match="device.path"):
        _source(nb201, data_dir, "")
