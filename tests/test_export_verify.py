"""hwnas.export's verification, timing and accounting helpers, and the TensorRT module."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from export_fixture import ALL_NONE, ALL_OPS, SKIPS

from hwnas.errors import HwnasError
from hwnas.export.checks import (
    compare_outputs,
    count_macs,
    count_params,
    simplify_onnx,
    time_onnx,
    verify_onnx,
)
from hwnas.onnx_io import check_onnx, export_onnx, random_input
from hwnas.profiling import tensorrt_engine as trt
from hwnas.spaces import NB201Space

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def small(data_dir):
    return NB201Space(data_dir=data_dir, channels=4, cells_per_stage=1)


def _model(space, arch_str, seed=0):
    torch.manual_seed(seed)
    return space.build(space.parse(arch_str), 10).eval()


@pytest.mark.parametrize("arch_str", [ALL_OPS, ALL_NONE, SKIPS])
def test_round_trip_every_op(small, tmp_path, arch_str):
    model = _model(small, arch_str)
    path = tmp_path / "m.onnx"
    export_onnx(model, torch.zeros(1, *SHAPE), path)
    check_onnx(path)
    res = verify_onnx(model, path, SHAPE, batches=(1, 8), atol=1e-4, rtol=1e-3, seed=3)
    assert res["passed"], res
    assert set(res["batches"]) == {"1", "8"}
    assert 0.0 <= res["max_abs_err"] <= 1e-4
    assert (res["seed"], res["atol"], res["rtol"]) == (3, 1e-4, 1e-3)


def test_disconnected_cell_is_exported(small):
    arch = small.parse(ALL_NONE)
    assert not arch.is_connected()
    assert small.parse(ALL_OPS).is_connected()


def test_verify_catches_a_different_model(small, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(_model(small, ALL_OPS, seed=0), torch.zeros(1, *SHAPE), path)
    res = verify_onnx(_model(small, ALL_OPS, seed=1), path, SHAPE, batches=(1, 2))
    assert not res["passed"]
    assert res["tol_ratio"] > 1


def test_fixed_batch_model_fails_other_batches(small, tmp_path):
    path = tmp_path / "m.onnx"
    model = _model(small, SKIPS)
    export_onnx(model, torch.zeros(2, *SHAPE), path, dynamic_batch=False)
    res = verify_onnx(model, path, SHAPE, batches=(2, 8))
    assert res["batches"]["2"]["passed"]
    assert not res["batches"]["8"]["passed"] and "onnxruntime" in res["batches"]["8"]["error"]
    assert not res["passed"]


def test_compare_outputs_rule():
    ref = np.array([1.0, -2.0, 0.0])
    assert compare_outputs(ref + 1e-6, ref, atol=1e-5, rtol=0)["passed"]
    res = compare_outputs(ref + [0, 0, 1e-3], ref, atol=1e-5, rtol=1e-2)
    assert not res["passed"] and res["max_abs_err"] == pytest.approx(1e-3)
    assert res["max_rel_err"] == 0.0  # the only error sits where |ref| <= atol
    exact = compare_outputs(ref, ref, atol=0, rtol=0)
    assert exact["passed"] and exact["tol_ratio"] == 0.0
    zero_tol = compare_outputs(ref + 1e-9, ref, atol=0, rtol=0)
    assert not zero_tol["passed"] and zero_tol["tol_ratio"] is None
    assert not compare_outputs(np.zeros(2), np.zeros(3), 1, 1)["passed"]
    assert not compare_outputs(np.array([np.nan]), np.array([0.0]), 1, 1)["passed"]


def test_random_input_is_seeded():
    a, b = random_input(SHAPE, 2, 7), random_input(SHAPE, 2, 7)
    assert a.dtype == np.float32 and a.shape == (2, *SHAPE) and np.array_equal(a, b)
    assert not np.array_equal(a, random_input(SHAPE, 2, 8))


def test_time_onnx_reports_statistics(small, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(_model(small, SKIPS), torch.zeros(1, *SHAPE), path)
    lat = time_onnx(path, SHAPE, warmup=1, repeats=5)
    assert lat["n"] == 5 and lat["warmup"] == 1 and lat["batch"] == 1
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] and lat["iqr"] >= 0
    assert lat["intra_op_num_threads"] == 1 and lat["graph_optimization_level"] == "ORT_ENABLE_ALL"
    with pytest.raises(HwnasError):
        time_onnx(path, SHAPE, repeats=0)


def test_count_macs_and_params_analytically():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 4 * 4, 10))
    assert count_macs(model, (3, 4, 4)) == 8 * 4 * 4 * 3 * 9 + 128 * 10
    assert count_params(model) == 8 * 3 * 9 + 128 * 10 + 10


def test_macs_grow_with_convolutions(small):
    none_macs = count_macs(_model(small, ALL_NONE), SHAPE)
    assert count_macs(_model(small, ALL_OPS), SHAPE) > none_macs > 0  # stem, reductions, classifier


def test_simplify_keeps_the_model_valid(small, tmp_path):
    pytest.importorskip("onnxslim", reason="onnxslim not installed (optional extra `simplify`)")
    path = tmp_path / "m.onnx"
    model = _model(small, ALL_OPS)
    export_onnx(model, torch.zeros(1, *SHAPE), path)
    res = simplify_onnx(path)
    assert res["status"] == "ok" and res["nodes_after"] <= res["nodes_before"]
    assert verify_onnx(model, path, SHAPE)["passed"]


def test_simplify_skips_without_onnxslim(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxslim", None)  # import now raises ImportError
    path = tmp_path / "m.onnx"
    export_onnx(_model(small, SKIPS), torch.zeros(1, *SHAPE), path)
    before = path.read_bytes()
    res = simplify_onnx(path)
    assert res["status"] == "skipped" and "onnxslim" in res["reason"]
    assert path.read_bytes() == before


def test_tensorrt_engine_round_trip(small, tmp_path):
    reason = trt.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    path = tmp_path / "m.onnx"
    model = _model(small, ALL_OPS)
    export_onnx(model, torch.zeros(1, *SHAPE), path)
    cache = tmp_path / "timing.cache"
    blob = trt.build_engine(path, fp16=False, workspace_mb=256, timing_cache=str(cache))
    assert isinstance(blob, bytes) and blob and cache.is_file()
    runner = trt.EngineRunner(blob)
    for batch in (1, 8):
        x = random_input(SHAPE, batch, 0)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        assert compare_outputs(runner.run(x), ref, atol=1e-3, rtol=1e-2)["passed"]
    times = runner.time(random_input(SHAPE, 1, 0), warmup=2, repeats=5)
    assert len(times) == 5 and all(t > 0 for t in times)


def test_tensorrt_reason_is_a_sentence_or_none():
    reason = trt.unavailable_reason()
    assert reason is None or (isinstance(reason, str) and len(reason) > 10)
    if reason is not None:
        with pytest.raises(HwnasError, match="TensorRT cannot run here"):
            trt.build_engine("missing.onnx")
