"""Native TensorRT: build an engine with hwnas.profiling.tensorrt_engine, time GPU compute with CUDA events
(copies excluded, like trtexec's "GPU Compute Time")."""
from __future__ import annotations

from pathlib import Path

from hwnas.onnx_io import random_input
from hwnas import machine
from hwnas.profiling.runners.base import RUNNERS, Runner


@RUNNERS.register("tensorrt")
class TensorRTRunner(Runner):
    name = "tensorrt"

    def available(self) -> tuple[bool, str]:
        from hwnas.profiling.tensorrt_engine import unavailable_reason

        reason = unavailable_reason()
        return (False, reason) if reason else (True, "")

    def fingerprint(self) -> dict:
        import tensorrt
        import torch

        s = self.settings
        return {"runner": self.name, "runtime": "tensorrt", "tensorrt": tensorrt.__version__,
                "cuda": torch.version.cuda, "gpu": machine.gpu_name(), "batch": s.batch,
                "precision": s.precision, "timing": "gpu_compute"}

    def prepare(self, onnx_path: Path, input_shape: tuple[int, ...]):
        from hwnas.profiling.tensorrt_engine import EngineRunner, build_engine

        s = self.settings
        engine = build_engine(onnx_path, fp16=s.precision == "fp16", timing_cache=self.options.get("timing_cache"))
        x = random_input(tuple(input_shape[1:]), int(input_shape[0]), int(self.options.get("seed", 0)))
        return EngineRunner(engine).step_fn(x), True  # each call returns its own GPU compute ms
