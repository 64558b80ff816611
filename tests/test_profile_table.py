"""LatencyTable: round trip, resume, fingerprints, corrupt files; LatencyModel and calibration math."""
import json
import warnings

import numpy as np
import pytest
from profile_fixture import synthetic_table

from hwnas.errors import DataError, HwnasError
from hwnas.latency.fidelity import calibration_curve, fidelity
from hwnas.latency.model import LatencyModel, fit_calibration
from hwnas.latency.table import SCHEMA_VERSION, FingerprintMismatch, LatencyTable
from hwnas.profiling.runners import RUNNERS, TimingSettings
from hwnas.spaces import NB201Space


@pytest.fixture(scope="module")
def space():
    return NB201Space()


def test_round_trip(space, tmp_path):
    t = synthetic_table(space, tmp_path / "dev.json", calibration=(1.5, 0.25))
    back = LatencyTable.load(tmp_path / "dev.json")
    assert back.to_dict() == json.loads(json.dumps(t.to_dict()))
    raw = json.loads((tmp_path / "dev.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    entry = raw["entries"]["nor_conv_3x3-cin16-cout16-h32-w32-s1"]
    assert {"op", "c_in", "c_out", "h", "w", "stride", "median_ms", "iqr_ms", "p90_ms", "n"} <= set(entry)


def test_corrupt_truncated_and_wrong_schema_are_one_clear_error(space, tmp_path):
    path = tmp_path / "dev.json"
    synthetic_table(space, path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"dev\.json is not a valid hwnas latency table \(not JSON: corrupt or truncated"):
        LatencyTable.load(path)
    readme = tmp_path / "README.md"  # a user's own file given as device.path: never told to delete it
    readme.write_text("# my board\n")
    with pytest.raises(DataError, match="README.md is not a valid hwnas latency table") as exc:
        LatencyTable.load(readme)
    assert "delete" not in str(exc.value) and "point device.path at a table written by hwnas-profile" in str(exc.value)
    path.write_text("\x00garbage")
    with pytest.raises(DataError, match="corrupt or truncated"):
        LatencyTable.load(path)
    raw = json.loads(text)
    raw["schema_version"] = 99
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="schema_version 99"):
        LatencyTable.load(path)
    raw = json.loads(text)
    raw["entries"]["stem-cin3-cout16-h32-w32-s1"]["median_ms"] = "fast"
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match="stem-cin3-cout16-h32-w32-s1.*median_ms"):
        LatencyTable.load(path)
    with pytest.raises(DataError, match="does not exist"):
        LatencyTable.load(tmp_path / "nope.json")


def test_fingerprint_mismatch_on_resume_is_an_error_and_on_load_a_warning(space, tmp_path):
    path = tmp_path / "dev.json"
    t = synthetic_table(space, path)
    other = {**t.fingerprint, "intra_op_threads": 4}
    with pytest.raises(FingerprintMismatch, match="intra_op_threads"):
        LatencyTable.open(path, "dev", other)
    assert len(LatencyTable.open(path, "dev", other, overwrite=True)) == 0  # explicit fresh table
    assert len(LatencyTable.open(path, "dev", t.fingerprint)) == len(t)  # same settings: resume
    with pytest.warns(UserWarning, match="intra_op_threads"):
        LatencyTable.load(path, current_fingerprint=other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LatencyTable.load(path, current_fingerprint=dict(t.fingerprint))


def test_another_generation_under_one_marketing_name_is_another_machine(space, tmp_path):
    # Cloud guests call several Xeon generations "Intel(R) Xeon(R) Processor"; the kernels differ.
    path = tmp_path / "dev.json"
    t = synthetic_table(space, path)
    t.fingerprint.update(cpu_id="GenuineIntel 6/85/7", cpu_isa="avx512")
    t.save()
    newer = {**t.fingerprint, "cpu_id": "GenuineIntel 6/143/8", "cpu_isa": "amx"}
    with pytest.raises(FingerprintMismatch, match="cpu_id: 'GenuineIntel 6/85/7' != 'GenuineIntel 6/143/8'"):
        LatencyTable.open(path, "dev", newer)
    with pytest.warns(UserWarning, match="cpu_isa: 'avx512' != 'amx'"):
        LatencyTable.load(path, current_fingerprint=newer)
    # A table written before these keys existed says nothing about them: no difference.
    for key in ("cpu_id", "cpu_isa"):
        del t.fingerprint[key]
    t.save()
    assert len(LatencyTable.open(path, "dev", newer)) == len(t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LatencyTable.load(path, current_fingerprint=newer)


def test_cpu_identity_reads_cpuinfo_fields():
    from hwnas.machine import cpu_id, cpu_isa

    xeon = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "85", "stepping": "7",
            "flags": "fpu sse4_1 avx avx2 fma avx512f avx512_vnni"}
    assert (cpu_id(xeon), cpu_isa(xeon)) == ("GenuineIntel 6/85/7", "avx512-vnni")
    zen3 = {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "1", "stepping": "1",
            "flags": "sse4_1 avx avx2 fma"}
    assert (cpu_id(zen3), cpu_isa(zen3)) == ("AuthenticAMD 25/1/1", "avx2")
    pi5 = {"CPU implementer": "0x41", "CPU architecture": "8", "CPU part": "0xd0b", "CPU variant": "0x4",
           "Features": "fp asimd evtstrm aes asimddp"}
    assert (cpu_id(pi5), cpu_isa(pi5)) == ("0x41 8/0xd0b/0x4", "neon-dot")
    assert (cpu_id({}), cpu_isa({})) == (None, None)  # no /proc/cpuinfo (macOS, Windows)


def test_missing_op_at_another_width_says_tables_cover_the_default_width(space, tmp_path):
    # hwnas-profile has no width options: for space.channels=32 re-running it would measure nothing new.
    t = synthetic_table(space, tmp_path / "dev.json")
    wide = NB201Space(channels=32)
    with pytest.raises(DataError) as exc:
        LatencyModel(t, wide, "cifar10").predict([wide.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|")])
    msg = str(exc.value)
    assert "default width (C=16, N=5)" in msg and "channels=32" in msg and "--channels 32" in msg
    assert "re-run hwnas-profile device=" not in msg


def test_missing_op_error_names_it_and_says_rerun(space, tmp_path):
    key = "nor_conv_1x1-cin32-cout32-h16-w16-s1"
    t = synthetic_table(space, tmp_path / "dev.json", drop=key)
    with pytest.raises(DataError, match=rf"no entry for operation {key}.*re-run hwnas-profile"):
        LatencyModel(t, space, "cifar10").predict([space.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|")])
    with pytest.raises(DataError, match="head-cin64-cout100"):  # a table for cifar10 used for cifar100
        LatencyModel(t, space, "cifar100").predict([space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")])


def test_model_sum_fast_path_equals_the_op_by_op_sum(space, tmp_path):
    t = synthetic_table(space, tmp_path / "dev.json", calibration=(2.0, 0.5))
    model = LatencyModel(t, space, "cifar10")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(25)]
    slow = []
    for a in archs:
        total = t.median("noop-cin3-cout3-h32-w32-s1")
        for s in space.ops(a):
            total += max(t.median(s.key) - t.median(f"noop-cin{s.c_in}-cout{s.c_in}-h{s.h}-w{s.w}-s1"), 0.0)
        slow.append(total)
    np.testing.assert_allclose(model.table_sum(archs), slow, rtol=1e-12)
    np.testing.assert_allclose(model.predict(archs), 2.0 * np.array(slow) + 0.5, rtol=1e-12)
    codes = np.array([a.code for a in archs])
    np.testing.assert_allclose(model.predict_codes(codes), model.predict(archs), rtol=1e-12)


def test_calibration_math_on_synthetic_numbers():
    x = np.array([1.0, 2.0, 3.0, 5.0])
    a, b = fit_calibration(x, 2.0 * x + 1.0)
    assert a == pytest.approx(2.0) and b == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    xs = rng.uniform(1, 10, 200)
    a, b = fit_calibration(xs, 0.8 * xs - 0.3 + rng.normal(0, 0.01, 200))
    assert a == pytest.approx(0.8, abs=0.01) and b == pytest.approx(-0.3, abs=0.03)
    with pytest.raises(HwnasError, match="at least 2"):
        fit_calibration([1.0], [2.0])
    with pytest.raises(HwnasError, match="different table sums"):
        fit_calibration([1.0, 1.0], [2.0, 3.0])


def test_fidelity_figures():
    m = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = fidelity(m, m)
    assert perfect["kendall_tau"] == pytest.approx(1) and perfect["mape_pct"] == 0 and perfect["within_5pct"] == 1
    f = fidelity(m * np.array([1.04, 1.08, 0.8, 1.0]), m)
    assert f["mape_pct"] == pytest.approx(100 * (0.04 + 0.08 + 0.2 + 0) / 4)
    assert f["within_5pct"] == 0.5 and f["within_10pct"] == 0.75


def test_calibration_curve_is_seeded_and_never_fits_on_validation():
    rng = np.random.default_rng(0)
    cs = rng.uniform(1, 3, 20)
    vs = rng.uniform(1, 3, 30)
    curve = calibration_curve(cs, 2 * cs + 1, vs, 2 * vs + 1, ks=(2, 5, 20))
    assert [c["k"] for c in curve] == [2, 5, 20]
    assert all(c["val_mape_pct_mean"] == pytest.approx(0, abs=1e-9) for c in curve)  # exact linear truth
    y = 2 * cs + 1 + rng.normal(0, 0.2, 20)
    assert calibration_curve(cs, y, vs, 2 * vs + 1, ks=(3, 10)) == calibration_curve(cs, y, vs, 2 * vs + 1, ks=(3, 10))


def test_profile_resumes_and_a_second_run_measures_nothing(space, tmp_path):
    from hwnas.profiling.profiler import profile

    runner = RUNNERS.get("ort_cpu")(TimingSettings(warmup=1, repeats=2))
    fp = {**runner.fingerprint(), "space": "nb201", "dataset": "cifar10"}
    path = tmp_path / "cpu.json"
    first = profile(space, "cifar10", runner, LatencyTable.open(path, "cpu", fp), calibrate=3, validate=3,
                    e2e_repeats=2, progress=False, plot_path=tmp_path / "cpu.png")
    assert first.ops_measured == first.n_ops == 22 + 4  # ops + per-call overhead probes
    # 18 shape-preserving ops (15 edge ops, 3 node sums) are also timed as a chain of copies
    # 6 architectures end to end, and the 3 validation ones once more (the noise ceiling)
    assert first.e2e_measured == 6 + 3 and first.timed_runs == (26 + 18) * 2 + 9 * 2
    chained = [e for e in json.loads(path.read_text())["entries"].values() if "marginal_ms" in e]
    assert len(chained) == 18 and all(e["chain_copies"] == 8 and e["marginal_ms"] >= 0 for e in chained)
    saved = json.loads(path.read_text())
    cal, val = saved["calibration"], saved["validation"]
    assert cal["n"] == 3 and val["n"] == 3 and val["disjoint_from_calibration"]
    assert not set(cal["archs"]) & set(val["archs"])
    for kind in ("raw", "calibrated"):
        assert {"kendall_tau", "spearman_rho", "mape_pct", "within_5pct", "within_10pct"} <= set(val[kind])
    assert (tmp_path / "cpu.png").read_bytes()[:4] == b"\x89PNG"
    second = profile(space, "cifar10", runner, LatencyTable.open(path, "cpu", fp), calibrate=3, validate=3,
                     e2e_repeats=2, progress=False)
    assert second.ops_measured == 0 and second.e2e_measured == 0 and second.timed_runs == 0
    assert json.loads(path.read_text())["entries"] == saved["entries"]


def test_marginal_cost_from_a_chain_replaces_the_overhead_corrected_median(space, tmp_path):
    t = synthetic_table(space, tmp_path / "dev.json")
    arch = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    key = "nor_conv_3x3-cin32-cout32-h16-w16-s1"
    before = LatencyModel(t, space, "cifar10").table_sum([arch])[0]
    old = t.median(key) - t.median("noop-cin32-cout32-h16-w16-s1")
    single = t.entries[key]
    from hwnas.profiling.runners.base import summarize
    from hwnas.spaces.base import OpSpec

    t.add(OpSpec("nor_conv_3x3", 32, 32, 16, 16, 1), summarize([single["median_ms"]]), summarize([single["median_ms"] + 7 * 0.5]), 8)
    assert t.entries[key]["marginal_ms"] == pytest.approx(0.5)
    after = LatencyModel(t, space, "cifar10").table_sum([arch])[0]
    assert after - before == pytest.approx(5 * (0.5 - old))  # 5 cells of stage 2 run it once each
    t.save()
    assert LatencyTable.load(t.path).entries[key]["marginal_ms"] == pytest.approx(0.5)
