"""Per-op-class calibration (latency_model.fit_per_op): recovery, shrinkage, fallback, old tables, recalibrate."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from profile_fixture import synthetic_table

from hwnas.config import DeviceConfig
from hwnas.errors import HwnasError
from hwnas.latency.fidelity import calibration_curve
from hwnas.latency.layout import nchwc_reorders, runtime_kernels
from hwnas.latency.model import (
    MIN_LAYOUT,
    MIN_PER_OP,
    PER_OP_CLASSES,
    LatencyModel,
    apply_calibration,
    fit,
    fit_layout,
    fit_per_op,
    resolve_mode,
)
from hwnas.latency.sources import make_latency_source
from hwnas.profiling.profiler import recalibrate, sample_archs
from hwnas.profiling.runners.base import summarize
from hwnas.spaces import NB201Space

TRUE = {"none": 3.0, "nor_conv_1x1": 1.4, "nor_conv_3x3": 1.2, "avg_pool_3x3": 0.8}


@pytest.fixture(scope="module")
def space():
    return NB201Space()


def synthetic_data(n, seed=0, noise=0.0, factors=TRUE, a=1.1, b=0.05):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, len(PER_OP_CLASSES))) * np.array([0.05, 0.3, 2.0, 0.2])
    S = X.sum(axis=1) + 0.3 + rng.uniform(0, 0.01, n)  # + fixed layers and skip edges
    y = a * S + X @ (np.array([factors[c] for c in PER_OP_CLASSES]) - a) + b
    return S, X, y * (1 + rng.normal(0, noise, n))


def test_recovers_known_per_class_factors():
    S, X, y = synthetic_data(40)
    cal = fit_per_op(S, X, y)
    assert cal["mode"] == "per_op" and cal["lambda"] == 0.0  # exact truth: no shrinkage wins the CV
    for c in PER_OP_CLASSES:
        assert cal["factors"][c] == pytest.approx(TRUE[c], rel=1e-6)
    assert cal["a"] == pytest.approx(1.1) and cal["b"] == pytest.approx(0.05)
    np.testing.assert_allclose(apply_calibration(cal, S, X), y, rtol=1e-9)
    noisy = fit_per_op(*synthetic_data(60, seed=1, noise=0.01))
    for c in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"):  # none's cost is tiny: the loosest
        assert noisy["factors"][c] == pytest.approx(TRUE[c], abs=0.15)


def test_shrinks_toward_the_linear_model_and_falls_back_with_few_points():
    # Linear truth (all classes at a) with noise: the per-class factors stay near a.
    S, X, y = synthetic_data(20, seed=2, noise=0.02, factors=dict.fromkeys(PER_OP_CLASSES, 1.1))
    cal = fit_per_op(S, X, y)
    for c in ("nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1"):
        assert abs(cal["factors"][c] - cal["a"]) < 0.3
    # An infinite-lambda grid is exactly the linear fit.
    big = fit_per_op(S, X, y, lambdas=(1e12,))
    lin = fit("linear", S, X, y)
    assert big["a"] == pytest.approx(lin["a"], rel=1e-6) and big["b"] == pytest.approx(lin["b"], rel=1e-6, abs=1e-9)
    assert all(f == pytest.approx(lin["a"], rel=1e-6) for f in big["factors"].values())
    # Too few calibration architectures: the linear fit, saying so.
    few = fit_per_op(S[: MIN_PER_OP - 1], X[: MIN_PER_OP - 1], y[: MIN_PER_OP - 1])
    assert few["mode"] == "linear" and "fallback" in few and "factors" not in few
    assert np.allclose(apply_calibration(few, S, X), few["a"] * S + few["b"])
    with pytest.raises(HwnasError, match="calibration='cubic'"):
        fit("cubic", S, X, y)


def test_per_op_curve_beats_linear_on_per_class_truth():
    S, X, y = synthetic_data(50, seed=3, noise=0.01)
    kw = dict(ks=(5, 20), draws=10)
    lin = calibration_curve(S[:20], y[:20], S[20:], y[20:], **kw)
    per = calibration_curve(S[:20], y[:20], S[20:], y[20:], mode="per_op", cal_classes=X[:20], val_classes=X[20:], **kw)
    assert per[0] == lin[0]  # k = 5 < MIN_PER_OP: the same linear fits
    assert per[1]["val_mape_pct_mean"] < lin[1]["val_mape_pct_mean"]


def test_old_linear_tables_load_and_per_op_tables_predict_consistently(space, tmp_path, data_dir):
    old = synthetic_table(space, tmp_path / "old.json", calibration=(1.5, 0.25))  # {a, b, n}: no mode
    model = LatencyModel(old, space, "cifar10")
    assert model.mode == "linear" and not model.factors and model.calibration == {"mode": "linear", "a": 1.5, "b": 0.25}
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    np.testing.assert_allclose(model.predict(archs), 1.5 * model.table_sum(archs) + 0.25)

    t = synthetic_table(space, tmp_path / "per.json")
    t.calibration = {"mode": "per_op", "a": 1.2, "b": 0.1, "factors": dict(TRUE), "n": 20}
    t.save()
    model = LatencyModel(t, space, "cifar10")
    assert model.mode == "per_op"
    # by hand from the op list: class ops at their factor, every other op at a
    by_hand = [0.1 + sum(TRUE.get(s.op, 1.2) * model._cost(s) for s in space.ops(arch, "cifar10")) + 1.2 * model._call_overhead()
               for arch in archs]
    np.testing.assert_allclose(model.predict(archs), by_hand, rtol=1e-9)
    np.testing.assert_allclose(model.predict_codes(np.array([x.code for x in archs])), by_hand, rtol=1e-9)
    src = make_latency_source(space, DeviceConfig(name="per", kind="profiled", path=str(t.path)), "cifar10", data_dir)
    np.testing.assert_allclose(src.latency(archs), by_hand, rtol=1e-9)
    assert src.describe()["calibration"]["factors"] == TRUE


def with_e2e(space, path, n, factors=TRUE, noise=0.0):
    """A synthetic table whose end-to-end timings follow a per-class truth."""
    t = synthetic_table(space, path)
    model = LatencyModel(t, space, "cifar10")
    archs = sample_archs(space, n, 0)
    cal = {"mode": "per_op", "a": 1.1, "b": 0.02, "factors": factors}
    y = apply_calibration(cal, model.table_sum(archs), model.class_costs(archs))
    y = y * (1 + np.random.default_rng(0).normal(0, noise, len(y)))
    for arch, ms in zip(archs, y):
        t.add_e2e(str(arch), summarize([ms] * 3))
    t.save()
    return t


def test_recalibrate_reuses_stored_timings(space, tmp_path):
    t = with_e2e(space, tmp_path / "dev.json", 40)
    rep = recalibrate(space, "cifar10", t, 20, 20, plot_path=tmp_path / "dev.png")
    assert rep.timed_runs == 0 and rep.calibration["mode"] == "per_op"
    saved = json.loads(t.path.read_text())
    cal, val = saved["calibration"], saved["validation"]
    assert cal["factors"]["nor_conv_3x3"] == pytest.approx(TRUE["nor_conv_3x3"], rel=1e-3)
    assert val["disjoint_from_calibration"] and not set(cal["archs"]) & set(val["archs"])
    assert val["calibrated"]["mape_pct"] < 1e-3 and val["calibrated_linear"]["mape_pct"] > 1e-3
    assert cal["linear"].keys() == {"a", "b"} and {c["k"] for c in cal["curve"]} == {2, 3, 5, 10, 20}
    assert (tmp_path / "dev.png").read_bytes()[:4] == b"\x89PNG"
    lin = recalibrate(space, "cifar10", t, 20, 20, calibration="linear")
    assert lin.calibration["mode"] == "linear" and "factors" not in lin.calibration
    assert LatencyModel(t, space, "cifar10").mode == "linear"
    with pytest.raises(HwnasError, match="no end-to-end timing of 10"):
        recalibrate(space, "cifar10", t, 20, 30)
    # a table profiled with other counts (e.g. validate=30, the default before 50) says which
    t.settings = {"calibrate": 20, "validate": 20}
    with pytest.raises(HwnasError, match="profiled with calibrate=20 validate=20: pass those"):
        recalibrate(space, "cifar10", t, 20, 30)


def test_app_recalibrate_true_times_nothing(space, tmp_path):
    with_e2e(space, tmp_path / "dev.json", 25, noise=0.01)
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.profile", "device=dev", f"out_dir={tmp_path}",
                        "recalibrate=true", "calibrate=15", "validate=10", "plot=false"],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 timed runs" in r.stdout and "calibration (per_op) on 15 architectures" in r.stdout
    assert "linear calibration: Kendall tau" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "hwnas.apps.profile", "device=dev", f"out_dir={tmp_path}",
                          "recalibrate=true", "calibration=cubic"], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "calibration='cubic'" in bad.stderr and "Traceback" not in bad.stderr


# ReorderInput + ReorderOutput counts read from onnxruntime 1.32's optimised graphs of these networks.
ORT_REORDERS = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|": 1,
    "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|": 46,
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|": 1,
    "|none~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|": 61,
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|skip_connect~2|": 1,  # Mul folded into conv
}


def test_layout_conversion_counts_match_onnxruntime(space, tmp_path):
    for arch, want in ORT_REORDERS.items():
        assert nchwc_reorders(space.parse(arch).op_names) == want, arch
    # and the installed onnxruntime still runs the kernels the replay counts
    import collections

    import onnx
    import onnxruntime as ort

    from hwnas.profiling.profiler import export_arch

    rng = np.random.default_rng(3)
    archs = [*ORT_REORDERS, "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|none~2|",  # Adds merged
             *(str(space.sample(rng)) for _ in range(8))]
    for arch in archs:
        a = space.parse(arch)
        if all(a.op_names[e] == "none" for e in (0, 1, 3)):
            continue  # onnxruntime also folds the first cell's Mul into the stem (not replayed)
        export_arch(space, a, "cifar10", tmp_path / "a.onnx")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = 1
        opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
        ort.InferenceSession(str(tmp_path / "a.onnx"), opts, providers=["CPUExecutionProvider"])
        ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)
        if ops["Conv"] and not ops["ReorderInput"] + ops["ReorderOutput"]:
            pytest.skip("this CPU's onnxruntime does not use the NCHWc layout")
        reorders, relus, adds = runtime_kernels(a.op_names)
        assert ops["ReorderInput"] + ops["ReorderOutput"] == reorders, arch
        assert ops["Add"] == adds, arch
        assert ops["Relu"] - relus in (0, 1), arch  # the head's ReLU is left out of the count


def test_layout_fit_recovers_the_cost_per_kernel_and_falls_back():
    rng = np.random.default_rng(4)
    S = rng.uniform(0.2, 1.5, 40)
    K = np.column_stack([rng.integers(1, 100, 40), rng.integers(0, 45, 40), rng.integers(0, 45, 40)]).astype(float)
    y = 1.2 * S + 0.003 * K[:, 0] + 0.001 * K[:, 1] + 0.0005 * K[:, 2] + 0.01
    cal = fit_layout(S, K, y)
    assert cal["mode"] == "layout" and cal["reorder_ms"] == pytest.approx(0.003, rel=1e-5)
    assert cal["relu_ms"] == pytest.approx(0.001, rel=1e-5) and cal["add_ms"] == pytest.approx(0.0005, rel=1e-4)
    assert cal["a"] == pytest.approx(1.2) and cal["b"] == pytest.approx(0.01, abs=1e-8)
    np.testing.assert_allclose(apply_calibration(cal, S, kernels=K), y, rtol=1e-8)
    # conversions only (an (n,) count, as older callers pass): the other costs are 0
    only = fit_layout(S, K[:, 0], 1.2 * S + 0.003 * K[:, 0] + 0.01)
    assert only["reorder_ms"] == pytest.approx(0.003, rel=1e-6) and only["relu_ms"] == only["add_ms"] == 0.0
    # a kernel that would take negative time is dropped, the others refitted
    neg = fit_layout(S, K, y - 0.002 * K[:, 2])
    assert neg["add_ms"] == 0.0 and neg["reorder_ms"] > 0 and neg["relu_ms"] > 0
    few = fit_layout(S[: MIN_LAYOUT - 1], K[: MIN_LAYOUT - 1], y[: MIN_LAYOUT - 1])
    assert few["mode"] == "linear" and "fallback" in few
    with pytest.raises(HwnasError, match="runtime kernel counts"):
        fit("layout", S, None, y)


def test_auto_mode_picks_layout_only_for_onnxruntime_cpu_nb201(space):
    ort_fp = {"runner": "ort_cpu", "graph_optimization": "all"}
    assert resolve_mode("auto", space, ort_fp) == "layout"
    assert resolve_mode("auto", space, {**ort_fp, "graph_optimization": "basic"}) == "per_op"
    assert resolve_mode("auto", space, {"runner": "tensorrt"}) == "per_op"
    assert resolve_mode("linear", space, ort_fp) == "linear"


def test_layout_tables_predict_consistently(space, tmp_path, data_dir):
    t = synthetic_table(space, tmp_path / "old.json")  # a table from before ReLUs and Adds were priced
    t.calibration = {"mode": "layout", "a": 1.2, "b": 0.1, "reorder_ms": 0.004, "n": 20}
    t.save()
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(20)]
    old = LatencyModel(t, space, "cifar10")
    np.testing.assert_allclose(old.predict(archs), [1.2 * s + 0.1 + 0.004 * nchwc_reorders(a.op_names)
                                                    for a, s in zip(archs, old.table_sum(archs))], rtol=1e-9)
    t = synthetic_table(space, tmp_path / "lay.json")
    t.calibration = {"mode": "layout", "a": 1.2, "b": 0.1, "reorder_ms": 0.004, "relu_ms": 0.002, "add_ms": 0.001, "n": 20}
    t.save()
    model = LatencyModel(t, space, "cifar10")
    by_hand = [1.2 * s + 0.1 + np.dot([0.004, 0.002, 0.001], runtime_kernels(a.op_names))
               for a, s in zip(archs, model.table_sum(archs))]
    np.testing.assert_allclose(model.predict(archs), by_hand, rtol=1e-9)
    np.testing.assert_allclose(model.predict_codes(np.array([x.code for x in archs])), by_hand, rtol=1e-9)
    src = make_latency_source(space, DeviceConfig(name="lay", kind="profiled", path=str(t.path)), "cifar10", data_dir)
    np.testing.assert_allclose(src.latency(archs), by_hand, rtol=1e-9)
    assert src.describe()["calibration"]["reorder_ms"] == 0.004


def test_recalibrate_layout_on_synthetic_timings(space, tmp_path):
    t = synthetic_table(space, tmp_path / "dev.json")
    t.fingerprint.update(runner="ort_cpu", graph_optimization="all")
    model = LatencyModel(t, space, "cifar10")
    archs = sample_archs(space, 30, 0)
    y = 1.1 * model.table_sum(archs) + model.runtime_kernels(archs) @ [0.002, 0.001, 0.0005] + 0.02
    for arch, ms in zip(archs, y):
        t.add_e2e(str(arch), summarize([ms] * 3))
    rep = recalibrate(space, "cifar10", t, 15, 15)  # calibration=auto
    assert rep.calibration["mode"] == "layout" and rep.calibration["requested_mode"] == "auto"
    assert rep.calibration["reorder_ms"] == pytest.approx(0.002, rel=1e-4)
    assert rep.calibration["relu_ms"] == pytest.approx(0.001, rel=1e-3) and rep.calibration["add_ms"] == pytest.approx(0.0005, rel=1e-2)
    assert rep.validation["calibrated"]["mape_pct"] < 1e-3


def test_ridge_leave_one_out_equals_refitting_without_each_point():
    """The hat-matrix shortcut scores each lambda as n refits would (also a point only it explains)."""
    from hwnas.latency.model import RIDGE_GRID, _ridge, _ridge_cv

    rng = np.random.default_rng(5)
    S = rng.uniform(0.3, 1.5, 25)
    X = np.column_stack([rng.uniform(0, 0.2, 25), np.eye(25)[:, 0] * 0.1])  # column 2: one architecture only
    y = 1.1 * S + 0.3 * X[:, 0] + 0.05 + rng.normal(0, 0.01, 25)
    th, lam, cv = _ridge_cv(S, X, y, RIDGE_GRID)
    scale = y.mean()
    Sn, Xn, yn = S / scale, X / scale, y / scale

    def refits(lam):
        err = []
        for i in range(25):
            keep = np.arange(25) != i
            t = _ridge(Sn[keep], Xn[keep], yn[keep], lam)
            err.append(abs(t[0] * Sn[i] + Xn[i] @ t[1:-1] + t[-1] - yn[i]) / yn[i])
        return 100 * np.mean(err)

    scores = [refits(v) for v in RIDGE_GRID]
    assert lam == RIDGE_GRID[int(np.argmin(scores))]
    assert cv == pytest.approx(min(scores), rel=1e-6)


def test_fidelity_interval_holds_the_point_narrows_with_n_and_needs_enough_architectures():
    """The jackknife interval of Kendall tau brackets the point estimate, is deterministic, narrows
    as validation architectures are added, and is not given for fewer than MIN_INTERVAL."""
    from hwnas.latency.fidelity import MIN_INTERVAL, fidelity, fidelity_interval

    rng = np.random.default_rng(1)
    measured = rng.uniform(0.3, 1.5, 200)
    predicted = measured * np.exp(rng.normal(0, 0.03, 200))
    widths = []
    for n in (30, 100, 200):
        ci = fidelity_interval(predicted[:n], measured[:n])
        tau = fidelity(predicted[:n], measured[:n])["kendall_tau"]
        assert ci["kendall_tau"][0] < tau < ci["kendall_tau"][1] and ci["n"] == n and ci["level"] == 0.95
        assert ci["within_10pct"][0] < ci["within_10pct"][1] <= 1.0
        assert ci == fidelity_interval(predicted[:n], measured[:n])
        widths.append(ci["kendall_tau"][1] - ci["kendall_tau"][0])
    assert widths[0] > widths[1] > widths[2]
    assert fidelity_interval(predicted[:MIN_INTERVAL - 1], measured[:MIN_INTERVAL - 1]) is None
    # A predictor that orders nothing: the interval holds 0, not the aim.
    shuffled = fidelity_interval(rng.permutation(predicted), measured)
    assert shuffled["kendall_tau"][0] < 0 < shuffled["kendall_tau"][1]
