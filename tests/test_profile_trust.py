"""A profile must not lie: positive calibrations, fall-back to a simpler model, a verdict,
tables that lie on disk refused at load."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from profile_fixture import synthetic_table

from hwnas.config import DeviceConfig
from hwnas.errors import DataError
from hwnas.latency.model import LatencyModel
from hwnas.latency.sources import make_latency_source
from hwnas.latency.table import LatencyTable
from hwnas.latency.verdict import table_verdict, verdict
from hwnas.profiling.profiler import recalibrate, sample_archs
from hwnas.profiling.runners.base import summarize
from hwnas.spaces import NB201Space

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def space():
    return NB201Space()


def busy_table(space, path, n=40, seed=0):
    """The EPYC report: end-to-end timings that a plain least-squares line fits with a steep slope
    and a large negative intercept (measured ~ 3.2 * sum - 3.6 ms, very noisy)."""
    t = synthetic_table(space, path)
    model = LatencyModel(t, space, "cifar10")
    archs = sample_archs(space, n, seed)
    s = model.table_sum(archs)
    rng = np.random.default_rng(seed)
    y = np.maximum(3.2 * s - 0.85 * s.mean() * 3.2 + rng.normal(0, 0.3 * s.mean(), n), 0.05 * s.mean())
    for arch, ms in zip(archs, y):
        t.add_e2e(str(arch), summarize([ms, ms * 1.2, ms * 0.8]))
    t.save()
    return t, model


def test_calibration_never_predicts_a_non_positive_latency(space, tmp_path):
    t, raw_model = busy_table(space, tmp_path / "busy.json")
    # the plain least-squares line on these timings predicts < 0 somewhere in the space (the bug)
    archs = sample_archs(space, 20, 0)
    s = raw_model.table_sum(archs)
    y = np.array([t.e2e[str(a)]["median_ms"] for a in archs])
    a, b = np.polyfit(s, y, 1)
    assert raw_model.min_prediction({"mode": "linear", "a": a, "b": b})[0] < 0
    for mode in ("linear", "per_op", "layout"):
        rep = recalibrate(space, "cifar10", t, 20, 20, calibration=mode)
        model = LatencyModel(LatencyTable.load(t.path), space, "cifar10")
        low, _ = model.min_prediction()
        assert low > 0, mode
        assert rep.calibration["min_prediction_ms"] == pytest.approx(low)
        # the whole space, priced as a search would: all positive
        src = make_latency_source(space, DeviceConfig(name="busy", kind="profiled", path=str(t.path)), "cifar10", None)
        assert src.all_latency().min() > 0


def test_falls_back_to_the_simpler_model_that_validates_better(space, tmp_path):
    t, _ = busy_table(space, tmp_path / "busy.json")
    rep = recalibrate(space, "cifar10", t, 20, 20, calibration="per_op")
    cal = rep.calibration
    cands = cal["candidates"]
    assert set(cands) == {"per_op", "linear", "raw"}
    kept = cal["selected"]
    ok = {k: c for k, c in cands.items() if c["refused"] is None}
    assert cands[kept]["val_mape_pct"] == min(c["val_mape_pct"] for c in ok.values())
    assert kept in cal["selection"]
    # the stored validation is that of the kept calibration
    assert rep.validation["calibrated"]["mape_pct"] == pytest.approx(cands[kept]["val_mape_pct"])


def test_raw_sum_kept_when_calibration_validates_worse(space, tmp_path):
    # end-to-end timings equal to the table sum on validation, but calibration archs skewed:
    # any fit on them validates worse than the raw sum
    t = synthetic_table(space, tmp_path / "raw.json")
    model = LatencyModel(t, space, "cifar10")
    archs = sample_archs(space, 20, 0)
    s = model.table_sum(archs)
    y = s.copy()
    y[:10] = s[:10] * np.linspace(0.5, 2.0, 10)[np.argsort(np.argsort(-s[:10]))]  # anti-correlated scale
    for arch, ms in zip(archs, y):
        t.add_e2e(str(arch), summarize([ms] * 3))
    t.save()
    rep = recalibrate(space, "cifar10", t, 10, 10, calibration="linear")
    assert rep.calibration["selected"] == "raw" and "validates better" in rep.calibration["selection"]
    assert rep.calibration["a"] == 1.0 and rep.calibration["b"] == 0.0
    assert rep.validation["calibrated"]["mape_pct"] == pytest.approx(0.0, abs=1e-9)


def test_verdict_levels_and_thresholds():
    fid = lambda tau, mape, w10: {"n": 30, "kendall_tau": tau, "mape_pct": mape, "within_10pct": w10}  # noqa: E731
    assert verdict({"calibrated": fid(0.92, 4.0, 0.95)})["level"] == "good"
    assert verdict({"calibrated": fid(0.92, 9.0, 0.6)})["level"] == "usable"
    poor = verdict({"calibrated": fid(0.5, 54.6, 0.1)})
    assert poor["level"] == "poor" and "idle machine" in poor["advice"]
    assert verdict(None)["level"] == "poor"
    noisy = verdict({"calibrated": fid(0.92, 4.0, 0.95)}, {"e2e_split_half_rel_diff_median": 0.2})
    assert "noisy" in noisy["reason"] and "halves of a timing differ by 20.0%" in noisy["noise"]


def test_noisy_means_medians_that_do_not_repeat_not_single_runs_that_spread():
    """An idle machine's single runs spread by ~10% while their medians repeat within 1-2%: only
    the medians' disagreement (halves of a timing, re-timings minutes apart) calls it noisy."""
    fid = {"n": 50, "kendall_tau": 0.95, "mape_pct": 2.0, "within_10pct": 1.0}
    idle = {"ops_rel_iqr_median": 0.10, "e2e_rel_iqr_median": 0.12, "e2e_split_half_rel_diff_median": 0.01,
            "e2e_recheck_rel_diff_median": 0.014, "e2e_recheck_within_10pct": 1.0, "e2e_rechecked": 50}
    quiet = verdict({"calibrated": fid}, idle)
    assert "noisy" not in quiet["reason"] and "op timings spread 10.0%" in quiet["noise"]
    busy = verdict({"calibrated": fid}, idle | {"e2e_recheck_rel_diff_median": 0.08})
    assert "noisy" in busy["reason"]


def test_verdict_quotes_how_sure_each_figure_is():
    """The reason gives tau and the within-10% share with the validation's stored 95% intervals;
    the level reads the figures themselves."""
    from hwnas.latency.fidelity import fidelity, fidelity_interval

    rng = np.random.default_rng(0)
    measured = rng.uniform(0.3, 1.5, 50)
    predicted = measured * np.exp(rng.normal(0, 0.02, 50))
    validation = {"calibrated": fidelity(predicted, measured), "interval": fidelity_interval(predicted, measured)}
    lo, hi = validation["interval"]["kendall_tau"]
    v = verdict(validation)
    assert v["level"] == "good" and f"(95% interval {lo:.2f}-{hi:.2f})" in v["reason"]
    assert "100% within 10% (95% interval 93-100%)" in v["reason"]  # Wilson: 50 of 50 is no proof of 100%
    assert "interval" not in verdict({"calibrated": validation["calibrated"]})["reason"]  # older tables
    assert "cannot tell" not in v["reason"]  # both intervals clear of the good threshold


def test_verdict_says_when_the_validation_cannot_tell_good_from_usable():
    fid = {"n": 50, "kendall_tau": 0.92, "mape_pct": 3.0, "within_10pct": 0.96}
    unsure = {"level": 0.95, "kendall_tau": [0.88, 0.96], "within_10pct": [0.87, 0.99]}
    v = verdict({"calibrated": fid, "interval": unsure})
    assert v["level"] == "good"
    assert "the interval of Kendall tau and of the share within 10% holds the good threshold" in v["reason"]
    assert "validate=100 would" in v["reason"]
    sure = verdict({"calibrated": fid, "interval": unsure | {"kendall_tau": [0.905, 0.94], "within_10pct": [0.9, 0.99]}})
    assert "cannot tell" not in sure["reason"]  # 0.9 at the interval's low end: clear of it
    poor = verdict({"calibrated": {**fid, "kendall_tau": 0.5}, "interval": unsure | {"kendall_tau": [0.3, 0.7]}})
    assert poor["level"] == "poor" and "cannot tell" not in poor["reason"]


def test_verdict_is_capped_by_the_noise_ceiling():
    """A table cannot be better than the machine's own repeat timings: 80% of re-timed architectures
    within 10% caps a good validation at usable, 60% makes any table poor (a loaded machine)."""
    fid = {"n": 30, "kendall_tau": 0.95, "mape_pct": 3.0, "within_10pct": 0.97}
    ceiling = lambda share: {"e2e_recheck_within_10pct": share, "e2e_recheck_rel_diff_median": 0.04,  # noqa: E731
                             "e2e_rechecked": 10}
    assert verdict({"calibrated": fid}, ceiling(0.9))["level"] == "good"
    capped = verdict({"calibrated": fid}, ceiling(0.8))
    assert capped["level"] == "usable" and "cannot be better than usable" in capped["reason"]
    loaded = verdict({"calibrated": fid}, ceiling(0.6))
    assert loaded["level"] == "poor" and "not to be trusted" in loaded["reason"]
    assert "10 architectures timed again minutes later" in loaded["noise"]


def test_committed_table_loads_and_gets_a_verdict_lazily(space, tmp_path):
    from hwnas.latency.table import TABLE_DIR

    committed = TABLE_DIR / "cpu-ort-intel-xeon-processor-t1-b1.json"
    t = LatencyTable.load(committed)
    assert t.verdict["level"] == "good"  # tau 0.975, 100% within 10% on its 50 held-out architectures
    assert t.clock["levels_ms"][0] < t.clock["levels_ms"][1]  # timed with the light and heavy references
    assert LatencyModel(t, space, "cifar10").min_prediction()[0] > 0
    # A table written before verdicts existed gets one from its stored validation and noise.
    older = json.loads(committed.read_text())
    del older["verdict"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    t = LatencyTable.load(tmp_path / "older.json")
    assert t.verdict is None and table_verdict(t) == verdict(t.validation, t.noise)
    assert table_verdict(t)["level"] == "good"


def test_poor_table_warns_once_in_one_line(space, tmp_path, caplog):
    t, _ = busy_table(space, tmp_path / "busy.json")
    recalibrate(space, "cifar10", t, 20, 20, calibration="linear")
    assert table_verdict(LatencyTable.load(t.path))["level"] == "poor"
    cfg = DeviceConfig(name="busy", kind="profiled", path=str(t.path))
    with caplog.at_level(logging.WARNING, logger="hwnas.latency"):
        make_latency_source(space, cfg, "cifar10", None)
        make_latency_source(space, cfg, "cifar10", None)
    lines = [r.getMessage() for r in caplog.records if "verdict POOR" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


@pytest.mark.parametrize("patch, what", [
    ({"a": float("nan")}, "calibration.a is nan"),
    ({"a": "abc"}, "calibration.a is 'abc'"),
    ({"b": "x"}, "calibration.b is 'x'"),
    ({"a": -1.0}, "calibration.a is -1.0"),
    ({"b": -1000.0}, "predicts .* ms for"),
])
def test_tables_that_lie_about_their_calibration_are_refused(space, tmp_path, patch, what):
    t = synthetic_table(space, tmp_path / "lie.json", calibration=(1.2, 0.1))
    raw = json.loads(t.path.read_text())
    raw["calibration"].update(patch)
    t.path.write_text(json.dumps(raw))  # json writes NaN for nan, as a hand edit might
    cfg = DeviceConfig(name="lie", kind="profiled", path=str(t.path))
    with pytest.raises(DataError, match=rf"lie.json is not a valid hwnas latency table.*{what}.*device.path"):
        make_latency_source(space, cfg, "cifar10", None)


@pytest.mark.parametrize("value", [0.0, -0.5])
def test_tables_with_non_positive_entries_are_refused(space, tmp_path, value):
    t = synthetic_table(space, tmp_path / "neg.json")
    raw = json.loads(t.path.read_text())
    key = next(iter(raw["entries"]))
    raw["entries"][key]["median_ms"] = value
    t.path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=rf"not a valid hwnas latency table.*{key}.*median_ms"):
        LatencyTable.load(t.path)


def test_profile_app_prints_the_verdict_on_a_poor_table(space, tmp_path):
    busy_table(space, tmp_path / "busy.json")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.profile", "device=busy", f"out_dir={tmp_path}",
                        "recalibrate=true", "calibrate=20", "validate=20", "plot=false", "calibration=linear"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "table verdict: POOR" in out and "idle machine" in out
    assert json.loads((tmp_path / "busy.json").read_text())["verdict"]["level"] == "poor"
