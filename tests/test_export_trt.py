"""The export's TensorRT branch, with tensorrt replaced by an onnxruntime stand-in.

The real engine path is exercised by test_export_verify.py::test_tensorrt_engine_round_trip
on machines with tensorrt and a GPU; here we check what the export does around it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixture import SKIPS, make_run

from hwnas.errors import HwnasError
from hwnas.export.config import ExportConfig
from hwnas.export.pipeline import run_export
from hwnas.profiling import tensorrt_engine as trt


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


# --- hwnas.profiling.tensorrt_engine.build_engine against a minimal stand-in of the tensorrt module ------------------

class _FakeTensor:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class _FakeNetwork:
    def __init__(self):
        self.inputs = []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]


class _FakeParser:
    fail = False

    def __init__(self, network, logger):
        self.network, self.num_errors = network, 0

    def parse_from_file(self, path):
        if self.fail:
            self.num_errors = 2
            return False
        self.network.inputs.append(_FakeTensor("input", (-1, 3, 32, 32)))
        return True

    def get_error(self, i):
        class Err:
            def code(self):
                return "UNSUPPORTED_NODE"

            def node(self):
                return i

            def desc(self):
                return f"op {i} unsupported"

        return Err()


class _FakeCache:
    def __init__(self, blob):
        self.blob = blob

    def serialize(self):
        return self.blob + b"+timings"


class _FakeConfig:
    def __init__(self):
        self.flags, self.pool, self.profiles, self.cache = set(), None, [], None

    def set_memory_pool_limit(self, kind, size):
        self.pool = (kind, size)

    def set_flag(self, flag):
        self.flags.add(flag)

    def create_timing_cache(self, blob):
        return _FakeCache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache

    def get_timing_cache(self):
        return self.cache

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)


class _FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, lo, opt, hi):
        self.shapes[name] = (lo, opt, hi)


class _FakeBuilder:
    last = None

    def __init__(self, logger):
        _FakeBuilder.last = self

    def create_network(self, flags):
        self.network = _FakeNetwork()
        return self.network

    def create_builder_config(self):
        self.config = _FakeConfig()
        return self.config

    def create_optimization_profile(self):
        return _FakeProfile()

    def build_serialized_network(self, network, config):
        return b"engine"


@pytest.fixture()
def fake_tensorrt(monkeypatch):
    import sys
    import types

    mod = types.ModuleType("tensorrt")
    mod.__version__ = "10.0.0"
    mod.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=None: None})
    mod.Builder, mod.OnnxParser = _FakeBuilder, _FakeParser
    mod.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    mod.BuilderFlag = types.SimpleNamespace(FP16="fp16")
    monkeypatch.setitem(sys.modules, "tensorrt", mod)
    monkeypatch.setattr(trt, "unavailable_reason", lambda: None)
    monkeypatch.setattr(_FakeParser, "fail", False)
    return mod


def test_build_engine_settings(fake_tensorrt, tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"model")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    assert trt.build_engine(onnx_file, fp16=True, workspace_mb=64, timing_cache=str(cache)) == b"engine"
    cfg = _FakeBuilder.last.config
    assert cfg.pool == ("workspace", 64 << 20) and cfg.flags == {"fp16"}
    lo, opt, hi = trt.PROFILE_BATCH
    assert cfg.profiles[0].shapes == {"input": ((lo, 3, 32, 32), (opt, 3, 32, 32), (hi, 3, 32, 32))}
    assert cache.read_bytes() == b"old+timings"  # the cache was read, extended and written back


def test_build_engine_reports_every_parser_error(fake_tensorrt, tmp_path, monkeypatch):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"model")
    monkeypatch.setattr(_FakeParser, "fail", True)
    with pytest.raises(HwnasError, match=r"\(2 error\(s\)\): UNSUPPORTED_NODE at node 0: op 0 unsupported; "
                                         r"UNSUPPORTED_NODE at node 1"):
        trt.build_engine(onnx_file)
    with pytest.raises(HwnasError, match="no such ONNX file"):
        trt.build_engine(tmp_path / "missing.onnx")


def test_unavailable_without_a_gpu(monkeypatch):
    import sys
    import types

    import torch

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA GPU" in trt.unavailable_reason()
