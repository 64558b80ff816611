"""torch -> ONNX export shared by profiling and `hwnas-export`: atomic, checked, shape-inferred.

The TorchScript exporter is the default because it is ~20x faster than the torch.export one
for the small static graphs of a cell-based space (profiling exports hundreds of them);
`exporter="dynamo"` selects torch's newer exporter.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from hwnas.errors import HwnasError
from hwnas.io import atomic_path

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    exporter: str = "torchscript",
) -> onnx.ModelProto:
    """Export `model` (in eval mode) to `path`; checks it with onnx's checker and shape inference.

    The file appears only once it has been exported and checked (temporary file + rename).
    Returns the shape-inferred model.
    """
    if exporter not in ("torchscript", "dynamo"):
        raise HwnasError(f"unknown ONNX exporter {exporter!r}; valid: torchscript, dynamo")
    model = model.eval()
    path = Path(path)
    with atomic_path(path, suffix=".onnx") as tmp, torch.no_grad(), _quiet():
        if exporter == "torchscript":
            torch.onnx.export(
                model, (example,), str(tmp), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None,
            )
        else:
            shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
            torch.onnx.export(
                model, (example,), str(tmp), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=shapes,
            )
        proto = check_onnx(tmp)
    return proto


def check_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """onnx.checker (full) and strict shape inference; a clear error on a corrupt file."""
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:  # onnx raises several unrelated exception types
        raise HwnasError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation chatter and progress prints."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


# --- verification, measurement and accounting (used by `hwnas-export`) ----------------------

def random_input(input_shape: tuple[int, ...], batch: int, seed: int) -> np.ndarray:
    """Seeded standard-normal input of shape (batch, *input_shape), float32."""
    rng = np.random.default_rng([seed, batch])  # one stream per batch size, reproducible
    return rng.standard_normal((batch, *input_shape)).astype(np.float32)


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


GRAPH_OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                      "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def ort_session(path: str | os.PathLike, threads: int = 1, inter_op_threads: int = 1,
                graph_optimization: str = "all", providers=("CPUExecutionProvider",)):
    """An onnxruntime session with pinned, recorded settings (see `ort_settings`).

    Defaults: CPU provider, every graph optimisation, sequential execution. Profiling runners
    pass their own threads, optimisation level and (GPU) providers.
    """
    import onnxruntime as ort

    if graph_optimization not in GRAPH_OPTIMIZATION:
        raise HwnasError(f"unknown graph optimisation level {graph_optimization!r}; valid: {', '.join(GRAPH_OPTIMIZATION)}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[graph_optimization])
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = inter_op_threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))


def ort_settings(threads: int) -> dict:
    """What a CPU latency measured through `ort_session` depends on."""
    return {"runtime": "onnxruntime", "provider": "CPUExecutionProvider",
            "graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "sequential",
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}


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
) -> dict:
    """Latency (ms) of one onnxruntime CPU run: warm-up runs, then `repeats` timed runs.

    Returns median, IQR (p75 - p25), p25/p75/p90, min, n and the session settings.
    """
    if repeats < 1:
        raise HwnasError(f"latency repeats must be >= 1, got {repeats}")
    sess = ort_session(path, threads)
    feed = {INPUT_NAME: random_input(tuple(input_shape), batch, seed)}
    for _ in range(max(warmup, 0)):
        sess.run([OUTPUT_NAME], feed)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        sess.run([OUTPUT_NAME], feed)
        times[i] = (time.perf_counter() - t0) * 1e3
    p25, p50, p75, p90 = np.percentile(times, [25, 50, 75, 90])
    return {"median": float(p50), "iqr": float(p75 - p25), "p25": float(p25), "p75": float(p75),
            "p90": float(p90), "min": float(times.min()), "n": int(repeats), "warmup": int(warmup),
            "batch": int(batch), **ort_settings(threads)}


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


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
