"""Native TensorRT: ONNX -> serialized engine, and a runner that times GPU compute.

tensorrt and CUDA are imported inside the functions, so importing this module is free on
machines without them; `unavailable_reason()` says why a path cannot run. Device buffers
come from torch.cuda. Engines take the ONNX input's dynamic batch axis through one
optimization profile (`PROFILE_BATCH`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError

# (min, opt, max) batch of the optimization profile for a dynamic batch axis. opt = 1:
# kernels are tuned for single-sample latency, what profiling and deployment time.
PROFILE_BATCH = (1, 1, 64)


def unavailable_reason() -> str | None:
    """None when tensorrt imports and a CUDA GPU is present; else why not, in words."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"tensorrt is not installed ({exc}); pip install 'hwnas[tensorrt]' on a machine with an NVIDIA GPU"
    except Exception as exc:  # a broken install (missing libnvinfer, CUDA driver mismatch)
        return f"tensorrt failed to import: {type(exc).__name__}: {exc}"
    try:
        import torch
    except ImportError:
        return "torch is not installed (needed for CUDA device buffers)"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (torch.cuda.is_available() is False)"
    return None


def _require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise HwnasError(f"TensorRT cannot run here: {reason}")


def _logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def build_engine(onnx_path, fp16: bool = False, workspace_mb: int = 1024,
                 timing_cache: str | None = None) -> bytes:
    """Build a serialized TensorRT engine from an ONNX file.

    Every ONNX parser error is reported. `timing_cache` (a file path) is read when it exists
    and written back after the build, so later builds skip already-timed tactics.
    """
    _require()
    import tensorrt as trt

    onnx_path = Path(onnx_path)
    logger = _logger()
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not onnx_path.is_file():
        raise HwnasError(f"{onnx_path}: no such ONNX file")
    # parse_from_file also finds weights stored beside the model (external data).
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise HwnasError(f"{onnx_path}: TensorRT's ONNX parser rejected the model ({len(errors)} error(s)): "
                         + "; ".join(errors or ["no details"]))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    cache_bytes = b""
    if timing_cache and os.path.isfile(timing_cache):
        cache_bytes = Path(timing_cache).read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)  # a cache from another GPU/version is rejected, not mixed

    profile = None
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape[1:]):
            raise HwnasError(f"{onnx_path}: input {tensor.name} has dynamic non-batch dims {shape}; "
                             f"export with fixed spatial size")
        if shape[0] < 0:
            profile = profile or builder.create_optimization_profile()
            lo, opt, hi = ((b, *shape[1:]) for b in PROFILE_BATCH)
            profile.set_shape(tensor.name, lo, opt, hi)
    if profile is not None:
        config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise HwnasError(f"{onnx_path}: TensorRT failed to build an engine (see its log above)")
    if timing_cache:
        from hwnas.io import atomic_path

        with atomic_path(timing_cache) as tmp:
            Path(tmp).write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def _parser_error(err) -> str:
    """One parser error as `<code> at node <n>: <description>`."""
    try:
        return f"{err.code()} at node {err.node()}: {err.desc()}"
    except Exception:  # the accessors differ slightly across TensorRT versions
        return str(err)


class EngineRunner:
    """Runs a serialized single-input, single-output engine on the current CUDA device."""

    def __init__(self, engine_bytes: bytes):
        _require()
        import tensorrt as trt
        import torch

        self._trt, self._torch = trt, torch
        self._runtime = trt.Runtime(_logger())
        self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise HwnasError("TensorRT could not deserialize the engine (built by another version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise HwnasError(f"EngineRunner handles one input and one output; engine has inputs "
                             f"{self.inputs} and outputs {self.outputs}")
        self.stream = torch.cuda.Stream()

    def _torch_dtype(self, name: str):
        np_dtype = np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))
        return self._torch.from_numpy(np.zeros(1, dtype=np_dtype)).dtype

    def _bind(self, x: np.ndarray):
        """Copy `x` to the GPU, size the output, and point the context at both buffers."""
        torch = self._torch
        (inp,), (out_name,) = self.inputs, self.outputs
        dev_in = torch.from_numpy(np.ascontiguousarray(x)).to("cuda", self._torch_dtype(inp))
        if not self.context.set_input_shape(inp, tuple(dev_in.shape)):
            raise HwnasError(f"input shape {tuple(dev_in.shape)} is outside the engine's profile "
                             f"(batch {PROFILE_BATCH[0]}..{PROFILE_BATCH[2]})")
        dev_out = torch.empty(tuple(self.context.get_tensor_shape(out_name)),
                              dtype=self._torch_dtype(out_name), device="cuda")
        self.context.set_tensor_address(inp, dev_in.data_ptr())
        self.context.set_tensor_address(out_name, dev_out.data_ptr())
        return dev_in, dev_out

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise HwnasError("TensorRT execution failed (see its log above)")

    def run(self, x: np.ndarray) -> np.ndarray:
        """Output for input `x` (host arrays in and out)."""
        _keep, dev_out = self._bind(x)
        self._enqueue()
        self.stream.synchronize()
        return dev_out.float().cpu().numpy()

    def step_fn(self, x: np.ndarray):
        """A call that runs the engine once on `x` (bound on the GPU) and returns its GPU compute ms
        (CUDA events; copies are not timed, trtexec's "GPU Compute")."""
        torch = self._torch
        keep = self._bind(x)

        def step(_keep=keep) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(self.stream)
            self._enqueue()
            end.record(self.stream)
            end.synchronize()
            return float(start.elapsed_time(end))

        return step

    def time(self, x: np.ndarray, warmup: int, repeats: int) -> list[float]:
        """GPU compute ms of each of `repeats` runs after `warmup` runs (hwnas/timing.py's loop)."""
        from hwnas.timing import time_callable

        return time_callable(self.step_fn(x), warmup, repeats, self_timed=True).tolist()
