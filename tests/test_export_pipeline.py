"""run_export end to end in-process: files, manifest schema, selection, weights, failures."""
from __future__ import annotations

import json

import pytest
import torch
from export_fixture import ALL_NONE, ALL_OPS, CONV1, SKIPS, edit_config, make_run

from hwnas.errors import HwnasError
from hwnas.export.checks import compare_outputs, verify_onnx
from hwnas.io import sha256_file
from hwnas.export.config import ExportConfig
from hwnas.export.pipeline import build_model, device_latency, run_export
from hwnas.export.report import sig3, summary_lines, verdict
from hwnas.onnx_io import check_onnx
from hwnas.rundir import load_run

MODEL_KEYS = {"name", "arch", "index", "status", "error", "file", "predicted", "is_connected",
              "device_latency_ms", "device_latency_note", "params", "macs", "flops", "flops_note", "simplify",
              "verification", "opset", "io", "size_bytes", "sha256", "measured_latency_ms", "tensorrt", "seconds",
              "checkpoint", "accuracy"}  # trained runs: the checkpoint and test accuracies (else null)


@pytest.fixture()
def run_dir(tmp_path, nb201, data_dir):
    return make_run(tmp_path / "run", nb201, data_dir=data_dir)


def cfg(run_dir, **kw) -> ExportConfig:
    base = dict(run=str(run_dir), latency_warmup=1, latency_repeats=3, progress=False)
    return ExportConfig(**{**base, **kw})


def test_export_selected_archs_and_manifest_schema(run_dir, nb201):
    ids = [nb201.index(nb201.parse(a)) for a in (ALL_OPS, ALL_NONE)]
    m = run_export(cfg(run_dir, archs=[ids[0], ALL_NONE, SKIPS], simplify=True))
    out = run_dir / "export"
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(m))
    assert {"schema_version", "created_utc", "tool_versions", "machine", "opset", "run", "network", "settings",
            "weights", "weights_note", "selection", "models", "counts", "wall_s"} <= set(m)
    for tool in ("hwnas", "torch", "onnx", "onnxruntime"):
        assert m["tool_versions"][tool]
    assert m["run"]["device"] == "raspi4" and m["run"]["summary"]["searcher"] == "random"
    assert m["network"] == {**m["network"], "channels": 4, "cells_per_stage": 1, "input_shape": [3, 32, 32],
                            "num_classes": 10, "batch": "dynamic"}
    assert m["weights"] == "random-init (seed 0)" and "trained" in m["weights_note"]
    assert m["selection"]["mode"] == "archs" and m["counts"] == {"selected": 3, "ok": 3, "failed": 0,
                                                                 "tensorrt_failed": 0}
    assert [e["arch"] for e in m["models"]] == [ALL_OPS, ALL_NONE, SKIPS]
    assert [e["index"] for e in m["models"][:2]] == ids
    for e in m["models"]:
        assert set(e) == MODEL_KEYS and e["status"] == "ok" and e["error"] is None
        path = out / e["file"]
        assert path.is_file() and e["size_bytes"] == path.stat().st_size
        assert e["sha256"] == sha256_file(path)
        check_onnx(path)
        assert e["verification"]["passed"] and set(e["verification"]["batches"]) == {"1", "8"}
        assert e["measured_latency_ms"]["n"] == 3 and e["measured_latency_ms"]["median"] > 0
        assert e["device_latency_ms"] is None and "raspi4" in e["device_latency_note"]
        assert e["tensorrt"]["status"] in ("skipped", "ok") and (e["tensorrt"].get("reason") or e["tensorrt"]["engines"])
        assert e["params"] > 0 and e["flops"] == 2 * e["macs"] > 0
        assert e["simplify"]["status"] in ("ok", "skipped")
    assert m["models"][1]["is_connected"] is False
    assert m["models"][0]["io"] == {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 32, 32]}],
                                    "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 10]}]}
    assert m["models"][0]["predicted"]["accuracy"] == 92.0
    assert m["models"][2]["predicted"]["latency_ms"] == 2.0
    report = (out / "report.md").read_text()
    assert "random-init (seed 0)" in report and "\\|none~0\\|" in report
    assert (out / "export_front.png").stat().st_size > 1000
    assert not list(out.glob(".*tmp*")) and not (out / "failed").exists()


def test_knee_selection_with_fixed_batch_and_out(run_dir, tmp_path):
    out = tmp_path / "elsewhere"
    m = run_export(cfg(run_dir, select="knee", out=str(out), batch=2, opset=13, plot=False))
    (e,) = m["models"]
    assert e["arch"] == CONV1 and e["opset"] == 13
    assert e["io"]["inputs"][0]["shape"] == [2, 3, 32, 32]
    assert list(e["verification"]["batches"]) == ["2"] and e["measured_latency_ms"]["batch"] == 2
    assert m["network"]["batch"] == 2 and not (out / "export_front.png").exists()
    assert not (run_dir / "export").exists()


def test_best_under_budget_override(run_dir):
    m = run_export(cfg(run_dir, select="best_under_budget", latency_budget_ms=100.0, plot=False))
    assert [e["arch"] for e in m["models"]] == [ALL_OPS]
    assert m["selection"]["latency_budget_ms"] == 100.0


def test_checkpoint_weights_are_used(run_dir, tmp_path, nb201):
    run = load_run(run_dir)
    from hwnas.export.pipeline import make_space

    space = make_space(run, None)
    trained = build_model(space, space.parse(SKIPS), 10, (3, 32, 32), cfg(run_dir, seed=5))
    ckpt = tmp_path / "w.pt"
    torch.save({"state_dict": trained.state_dict()}, ckpt)
    m = run_export(cfg(run_dir, archs=[SKIPS], weights=str(ckpt), plot=False))
    assert m["weights"].startswith(f"checkpoint {ckpt}") and m["models"][0]["status"] == "ok"
    # The exported graph carries the checkpoint's weights: it verifies against the trained model.
    res = verify_onnx(trained, run_dir / "export" / m["models"][0]["file"], (3, 32, 32))
    assert res["passed"]

    with pytest.raises(HwnasError, match="1 of 1 exports failed.*do not fit"):
        run_export(cfg(run_dir, archs=[ALL_OPS], weights=str(ckpt), plot=False))


def test_verification_failure_quarantines_the_file(run_dir, monkeypatch):
    real = compare_outputs

    def broken(actual, expected, atol, rtol):  # as if onnxruntime computed something else
        return real(actual + 1.0, expected, atol, rtol)

    monkeypatch.setattr("hwnas.export.checks.compare_outputs", broken)
    with pytest.raises(HwnasError, match="2 of 2 exports failed.*differs from torch") as info:
        run_export(cfg(run_dir, archs=[SKIPS, CONV1]))
    out = run_dir / "export"
    lines = summary_lines(info.value.manifest, out)
    assert "0 of 2 verified, 2 FAILED" in lines[0]
    assert all(" FAILED (max rel err " in ln and "x tolerance)" in ln for ln in lines[1:])
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["failed"] == 2
    for e in m["models"]:
        assert set(e) == MODEL_KEYS and e["status"] == "failed" and "differs from torch" in e["error"]
        assert e["file"].startswith("failed/") and (out / e["file"]).is_file()
        assert not e["verification"]["passed"]
    assert not list(out.glob("*.onnx"))
    assert "## Failed" in (out / "report.md").read_text()


def test_the_printed_line_puts_the_tables_prediction_beside_the_measured_latency(tmp_path):
    def manifest(settings_of_table):
        model = {"name": "nb201_00001", "status": "ok", "arch": SKIPS, "verification": {"passed": True, "max_rel_err": 1e-6},
                 "measured_latency_ms": {"median": 0.244, "iqr": 0.01, "settings_of_table": settings_of_table},
                 "device_latency_ms": 0.306, "tensorrt": {"status": "skipped"}}
        return {"counts": {"ok": 1, "selected": 1, "failed": 0, "tensorrt_failed": 0}, "models": [model]}

    line = summary_lines(manifest("/tables/this-machine.json"), tmp_path)[1]
    assert "ORT CPU 0.244 ms (table 0.306, +25%)" in line
    # Timed with other settings than the table's (another machine or threads): nothing to compare.
    assert "(table" not in summary_lines(manifest(None), tmp_path)[1]


@pytest.mark.parametrize("kw, message", [
    (dict(select="best"), "unknown select"),
    (dict(exporter="tf"), "unknown exporter"),
    (dict(batch=0), "batch=0"),
    (dict(verify_batches=[]), "verify_batches"),
    (dict(latency_repeats=0), "latency_repeats"),
    (dict(weights="/no/such/file.pt"), "no such file"),
    (dict(archs=["|nor_conv_3x3~0|+|none~0|"]), "malformed NAS-Bench-201 architecture"),
])
def test_config_errors(run_dir, kw, message):
    with pytest.raises(HwnasError, match=message):
        run_export(cfg(run_dir, **kw))


def test_unwritable_output_dir(run_dir):
    blocker = run_dir / "a_file"
    blocker.write_text("x")
    with pytest.raises(HwnasError, match="cannot write to output directory"):
        run_export(cfg(run_dir, out=str(blocker / "export")))


def test_dataset_the_space_cannot_build(run_dir):
    edit_config(run_dir, "dataset", name="darcy")
    with pytest.raises(HwnasError, match="no network geometry for dataset 'darcy'"):
        run_export(cfg(run_dir))


def test_exporter_crash_leaves_no_stale_model(run_dir, nb201, monkeypatch):
    out = run_dir / "export"
    out.mkdir()
    stale = out / f"nb201_{nb201.index(nb201.parse(SKIPS)):05d}.onnx"
    stale.write_bytes(b"an earlier export")

    def crash(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::foo")

    monkeypatch.setattr("hwnas.export.pipeline.export_onnx", crash)
    with pytest.raises(HwnasError, match="ONNX export failed: RuntimeError: unsupported operator"):
        run_export(cfg(run_dir, archs=[SKIPS]))
    assert not stale.exists()
    (e,) = json.loads((out / "manifest.json").read_text())["models"]
    assert e["status"] == "failed" and e["file"] is None and e["verification"] is None


def test_one_checkpoint_for_many_archs_is_refused(run_dir, tmp_path):
    ckpt = tmp_path / "w.pt"
    torch.save({}, ckpt)
    with pytest.raises(HwnasError, match="4 architectures are selected"):
        run_export(cfg(run_dir, weights=str(ckpt)))


def test_other_dataset_shapes_and_energy(tmp_path, nb201, data_dir):
    run_dir = make_run(tmp_path / "run", nb201, data_dir=data_dir)
    edit_config(run_dir, "dataset", name="ninapro")
    for name in ("pareto.csv", "history.csv"):  # a device with energy adds a column
        lines = (run_dir / name).read_text().splitlines()
        (run_dir / name).write_text("\n".join([lines[0] + ",energy_mj"] + [ln + ",1.5" for ln in lines[1:]]) + "\n")
    m = run_export(cfg(run_dir, archs=[ALL_OPS], plot=False))
    assert m["network"]["input_shape"] == [1, 16, 52] and m["network"]["num_classes"] == 18
    (e,) = m["models"]
    assert e["status"] == "ok" and e["predicted"]["energy_mj"] == 1.5


def test_a_new_export_replaces_the_previous_one(run_dir, monkeypatch):
    out = run_dir / "export"
    real = compare_outputs
    monkeypatch.setattr("hwnas.export.checks.compare_outputs", lambda a, e, atol, rtol: real(a + 1.0, e, atol, rtol))
    with pytest.raises(HwnasError):
        run_export(cfg(run_dir, archs=[SKIPS], plot=False))
    monkeypatch.setattr("hwnas.export.checks.compare_outputs", real)
    first = run_export(cfg(run_dir, archs=[ALL_OPS], plot=False))["models"][0]["file"]
    (out / "notes.txt").write_text("mine")
    m = run_export(cfg(run_dir, archs=[CONV1], plot=False))
    assert sorted(p.name for p in out.glob("*.onnx")) == [m["models"][0]["file"]] != [first]
    assert not (out / "failed").exists() and (out / "notes.txt").is_file()


def test_random_init_is_seeded_and_leaves_the_global_rng_alone(run_dir):
    from hwnas.export.pipeline import make_space

    space = make_space(load_run(run_dir), None)
    state = torch.random.get_rng_state()
    a = build_model(space, space.parse(ALL_OPS), 10, (3, 32, 32), cfg(run_dir, seed=1)).state_dict()
    b = build_model(space, space.parse(ALL_OPS), 10, (3, 32, 32), cfg(run_dir, seed=1)).state_dict()
    c = build_model(space, space.parse(ALL_OPS), 10, (3, 32, 32), cfg(run_dir, seed=2)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("predicted", [-0.4, 0.0, float("nan")])
def test_a_non_positive_device_latency_is_not_recorded(run_dir, monkeypatch, predicted):
    # A miscalibrated profiled table can predict a negative latency: null, with the reason.
    monkeypatch.setattr("hwnas.export.pipeline.profiled_device_latency", lambda *a, **k: predicted)
    (e,) = run_export(cfg(run_dir, archs=[SKIPS], plot=False))["models"]
    assert e["device_latency_ms"] is None and "not a latency" in e["device_latency_note"]
    assert device_latency("pi", 1.25) == (1.25, "profiled latency table for pi")


def test_printed_figures_are_rounded_and_verdicts_spelled_out():
    assert [sig3(x) for x in (1.23456, 12.3456, 1234.5, 0.0123456, None)] == ["1.23", "12.3", "1230", "0.0123", "-"]
    ok = {"status": "ok", "verification": {"passed": True, "max_abs_err": 11.5, "max_rel_err": 2.1e-6,
                                           "tol_ratio": 0.02}}
    assert verdict(ok) == "verified (max rel err 2.1e-06)"
    bad = {"status": "failed", "verification": {"passed": False, "max_abs_err": 11.5, "max_rel_err": 0.3,
                                                "tol_ratio": 3.14159}}
    assert verdict(bad) == "FAILED (max rel err 3.0e-01, 3.14x tolerance)"
    assert verdict({"status": "failed", "verification": None}) == "FAILED"
