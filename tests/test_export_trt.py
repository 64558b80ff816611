"""The export's TensorRT branch, with tensorrt replaced by an onnxruntime stand-in.

The real engine path is exercised by test_export_verify.py::test_tensorrt_engine_round_trip
on machines with tensorrt and a GPU; here we check what the export does around it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from export_fixture import SKIPS, make_run
from hwnas import trt
from hwnas.errors import HwnasError
from hwnas.export_config import ExportConfig
from hwnas.export_pipeline import run_export


class FakeRunner:
    """An 'engine' that is the ONNX model itself, run by onnxruntime."""

    offset = 0.0

    def __init__(self, engine_bytes: bytes):
        import onnxruntime as ort

        self.sess = ort.InferenceSession(engine_bytes, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {"input": x})[0] + self.offset

    def time(self, x, warmup, repeats):
        return [0.5] * repeats


@pytest.fixture()
def fake_trt(monkeypatch):
    builds = []

    def build_engine(onnx_path, fp16=False, workspace_mb=1024, timing_cache=None):
        builds.append({"fp16": fp16, "workspace_mb": workspace_mb, "timing_cache": timing_cache})
        with open(onnx_path, "rb") as fh:
            return fh.read()

    monkeypatch.setattr(trt, "unavailable_reason", lambda: None)
    monkeypatch.setattr(trt, "build_engine", build_engine)
    monkeypatch.setattr(trt, "EngineRunner", FakeRunner)
    return builds


def cfg(run_dir, **kw):
    return ExportConfig(run=str(run_dir), archs=[SKIPS], latency_warmup=1, latency_repeats=3, progress=False,
                        plot=False, **kw)


def test_engines_are_built_verified_and_recorded(tmp_path, nb201, data_dir, fake_trt):
    run_dir = make_run(tmp_path / "run", nb201, data_dir=data_dir)
    m = run_export(cfg(run_dir, fp16=True, trt_workspace_mb=256))
    rec = m["models"][0]["tensorrt"]
    assert rec["status"] == "ok" and [e["precision"] for e in rec["engines"]] == ["fp32", "fp16"]
    assert [b["fp16"] for b in fake_trt] == [False, True] and fake_trt[0]["workspace_mb"] == 256
    for eng in rec["engines"]:
        assert eng["status"] == "ok" and (run_dir / "export" / eng["file"]).is_file()
        assert eng["verification"]["passed"] and eng["verification"]["reference"] == "onnxruntime-cpu"
        assert eng["gpu_compute_ms"] == {"median": 0.5, "iqr": 0.0, "n": 3, "batch": 1}
        assert eng["build"]["profile_batch"] == list(trt.PROFILE_BATCH)
    assert rec["engines"][1]["verification"]["atol"] == pytest.approx(10 * rec["engines"][0]["verification"]["atol"])


def test_engine_mismatch_fails_the_export(tmp_path, nb201, data_dir, fake_trt, monkeypatch):
    monkeypatch.setattr(FakeRunner, "offset", 1.0)
    run_dir = make_run(tmp_path / "run", nb201, data_dir=data_dir)
    with pytest.raises(HwnasError, match=r"1 of 1 exports failed.*\(TensorRT engine\)"):
        run_export(cfg(run_dir))
    m = json.loads((run_dir / "export" / "manifest.json").read_text())
    (eng,) = m["models"][0]["tensorrt"]["engines"]
    assert eng["status"] == "failed" and "differs from onnxruntime" in eng["error"]
    assert not (run_dir / "export" / eng["file"]).exists()
    assert m["counts"]["tensorrt_failed"] == 1 and m["models"][0]["status"] == "ok"


def test_skipped_here_with_the_reason(tmp_path, nb201, data_dir):
    run_dir = make_run(tmp_path / "run", nb201, data_dir=data_dir)
    rec = run_export(cfg(run_dir))["models"][0]["tensorrt"]
    reason = trt.unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT is available here; the skip path does not apply")
    assert rec == {"status": "skipped", "reason": reason}
    assert run_export(cfg(run_dir, tensorrt=False))["models"][0]["tensorrt"] == {"status": "skipped",
                                                                                   "reason": "tensorrt=false"}
