"""What `hwnas-export` checks and records of an exported model: outputs against torch, latency,
parameters, MACs, checksum, optional simplification, input/output description."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import torch

from hwnas.errors import HwnasError
from hwnas.io import atomic_path
from hwnas.onnx_io import (
    GRAPH_OPTIMIZATION,
    INPUT_NAME,
    OUTPUT_NAME,
    _quiet,
    check_onnx,
    ort_session,
    ort_settings,
    random_input,
)


def compare_outputs(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> dict:
    """Closeness figures of `actual` against the reference `expected`.

    passed: |a - e| <= atol + rtol * |e| everywhere (numpy.allclose's rule).
    max_rel_err is taken only where |e| > atol: below that, relative error measures noise.
    tol_ratio = max |a - e| / (atol + rtol * |e|); <= 1 means passed (null when infinite).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return {"passed": False, "error": f"shape {list(a.shape)} != reference {list(e.shape)}",
                "max_abs_err": None, "max_rel_err": None, "tol_ratio": None}
    if not np.isfinite(a).all():
        return {"passed": False, "error": "non-finite values in output",
                "max_abs_err": None, "max_rel_err": None, "tol_ratio": None}
    diff = np.abs(a - e)
    tol = atol + rtol * np.abs(e)
    big = np.abs(e) > atol
    rel = float((diff[big] / np.abs(e[big])).max()) if big.any() else 0.0
    # Zero tolerance (atol = rtol = 0) makes the ratio infinite for any difference: JSON null.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(diff == 0, 0.0, diff / tol)
    ratio = float(ratios.max()) if diff.size else 0.0
    return {"passed": bool((diff <= tol).all()), "max_abs_err": float(diff.max()) if diff.size else 0.0,
            "max_rel_err": rel, "tol_ratio": ratio if np.isfinite(ratio) else None}


def verify_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike,
    input_shape: tuple[int, ...],
    batches: tuple[int, ...] = (1, 8),
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
    threads: int = 1,
) -> dict:
    """onnxruntime (CPU) output of `path` vs `model`'s torch output, per batch size.

    Returns {"passed", "atol", "rtol", "seed", "max_abs_err", "max_rel_err", "tol_ratio",
    "batches": {str(batch): compare_outputs(...)}}; never raises on a mismatch.
    """
    model = model.eval()
    sess = ort_session(path, threads)
    per_batch: dict[str, dict] = {}
    for batch in batches:
        x = random_input(tuple(input_shape), batch, seed)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        try:
            (actual,) = sess.run([OUTPUT_NAME], {INPUT_NAME: x})
        except Exception as exc:  # e.g. a fixed-batch model fed another batch size
            per_batch[str(batch)] = {"passed": False, "error": f"onnxruntime: {type(exc).__name__}: {exc}",
                                     "max_abs_err": None, "max_rel_err": None, "tol_ratio": None}
            continue
        per_batch[str(batch)] = compare_outputs(actual, expected, atol, rtol)
    return summarise_checks(per_batch, atol=atol, rtol=rtol, seed=seed)


def summarise_checks(per_batch: dict[str, dict], **settings) -> dict:
    """Fold per-batch comparisons into one verdict with the worst figures."""
    def worst(key: str) -> float | None:
        vals = [r[key] for r in per_batch.values() if r.get(key) is not None]
        return max(vals) if vals else None

    return {"passed": bool(per_batch) and all(r["passed"] for r in per_batch.values()), **settings,
            "max_abs_err": worst("max_abs_err"), "max_rel_err": worst("max_rel_err"),
            "tol_ratio": worst("tol_ratio"), "batches": per_batch}


def time_onnx(
    path: str | os.PathLike,
    input_shape: tuple[int, ...],
    batch: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    threads: int = 1,
    seed: int = 0,
    inter_op_threads: int = 1,
    graph_optimization: str = "all",
) -> dict:
    """Latency (ms) of one onnxruntime CPU run, timed by the profiler's own runner (ort_cpu) with
    its loop and statistics (hwnas/timing.py), so the figure compares with a latency
    table's measured under the same settings.

    Returns median, iqr, p10, p90, p99, mean, min, n, outliers, warmup, batch, rounds, runner and
    the session settings.
    """
    from hwnas.profiling.runners.base import TimingSettings
    from hwnas.profiling.runners.ort_cpu import OrtCpuRunner

    if repeats < 1:
        raise HwnasError(f"latency repeats must be >= 1, got {repeats}")
    settings = TimingSettings(warmup=warmup, repeats=repeats, intra_op_threads=threads,
                              inter_op_threads=inter_op_threads, graph_optimization=graph_optimization, batch=batch)
    (t, extra), = OrtCpuRunner(settings, seed=seed).time_many([(Path(path), (batch, *input_shape))])
    return {"median": t.median_ms, "iqr": t.iqr_ms, "p10": t.p10_ms, "p90": t.p90_ms, "p99": t.p99_ms,
            "mean": t.mean_ms, "min": t.min_ms, "n": t.n, "outliers": t.outliers, "warmup": int(warmup),
            "batch": int(batch), "rounds": extra["rounds"], "retimed": extra["retimed"], "runner": "ort_cpu",
            **ort_settings(threads), "graph_optimization_level": GRAPH_OPTIMIZATION[graph_optimization],
            "inter_op_num_threads": inter_op_threads}


def count_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one sample through Conv2d and Linear layers (forward hooks).

    Pooling, BatchNorm, additions and the `none` op's multiply are not counted: they are a
    small, architecture-independent share next to the convolutions.
    """
    total = 0

    def conv_hook(mod: torch.nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += int(out[0].numel()) * (mod.in_channels // mod.groups) * k

    def linear_hook(mod: torch.nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += int(out[0].numel()) * mod.in_features

    handles = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


def simplify_onnx(path: str | os.PathLike) -> dict:
    """Simplify `path` in place with onnxslim (optional extra `simplify`), re-checked.

    Returns {"status": "ok", "nodes_before", "nodes_after", "onnxslim"} or
    {"status": "skipped", "reason"} when onnxslim is not installed.
    """
    try:
        import onnxslim
    except ImportError:
        return {"status": "skipped", "reason": "onnxslim is not installed (pip install 'hwnas[simplify]')"}
    path = Path(path)
    before = onnx.load(str(path))
    with _quiet():
        slim = onnxslim.slim(before)
    if slim is None:
        raise HwnasError(f"{path}: onnxslim returned no model")
    with atomic_path(path, suffix=".onnx") as tmp:
        onnx.save(slim, str(tmp))
        check_onnx(tmp)
    return {"status": "ok", "nodes_before": len(before.graph.node), "nodes_after": len(slim.graph.node),
            "onnxslim": getattr(onnxslim, "__version__", "unknown")}


def describe_io(path: str | os.PathLike) -> dict:
    """Names, element types and shapes (symbolic dims by name) of the model's inputs and outputs."""
    proto = onnx.load(str(path), load_external_data=False)

    def one(value: onnx.ValueInfoProto) -> dict:
        t = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}

    return {"inputs": [one(v) for v in proto.graph.input], "outputs": [one(v) for v in proto.graph.output]}
