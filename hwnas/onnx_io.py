"""torch -> ONNX export and onnxruntime sessions, shared by profiling and `hwnas-export`.

Exports are atomic, checked and shape-inferred.

The TorchScript exporter is the default because it is ~20x faster than the torch.export one
for the small static graphs of a cell-based space (profiling exports hundreds of them);
`exporter="dynamo"` selects torch's newer exporter.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
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


def random_input(input_shape: tuple[int, ...], batch: int, seed: int) -> np.ndarray:
    """Seeded standard-normal input of shape (batch, *input_shape), float32."""
    rng = np.random.default_rng([seed, batch])  # one stream per batch size, reproducible
    return rng.standard_normal((batch, *input_shape)).astype(np.float32)


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
