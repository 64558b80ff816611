"""onnxruntime on the CPU: pinned threads and optimisation level, sequential, perf_counter.

The model runs `warmup` times, then `repeats` timed runs of `session.run` (host arrays in and
out: on a CPU that is what an application pays), through hwnas/timing.py (several
models interleaved in rounds, see Runner.time_many). ORT GPU runners subclass this and only change
the providers and how inputs are bound.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError
from hwnas.onnx_io import INPUT_NAME, OUTPUT_NAME, ort_session, random_input
from hwnas import machine
from hwnas.profiling.runners.base import RUNNERS, Runner


@RUNNERS.register("ort_cpu")
class OrtCpuRunner(Runner):
    name = "ort_cpu"
    provider = "CPUExecutionProvider"

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return False, f"onnxruntime is not installed ({exc})"
        if self.provider not in ort.get_available_providers():
            return False, (f"onnxruntime {ort.__version__} has no {self.provider} (available: "
                           f"{', '.join(ort.get_available_providers())})")
        if self.settings.precision != "fp32" and self.name in ("ort_cpu", "ort_cuda"):
            return False, f"runner {self.name} times fp32 models only; precision=fp16 needs runner=ort_trt or tensorrt"
        return True, ""

    def providers(self) -> list:
        return [self.provider]

    def fingerprint(self) -> dict:
        import onnxruntime as ort

        s = self.settings
        return {"runner": self.name, "runtime": "onnxruntime", "onnxruntime": ort.__version__,
                "provider": self.provider, **self.hardware(),
                "intra_op_threads": s.intra_op_threads, "inter_op_threads": s.inter_op_threads,
                "graph_optimization": s.graph_optimization, "execution_mode": "sequential",
                "batch": s.batch, "precision": s.precision}

    def hardware(self) -> dict:
        return machine.cpu_hardware()

    def session(self, onnx_path: Path):
        s = self.settings
        try:
            return ort_session(onnx_path, threads=s.intra_op_threads, inter_op_threads=s.inter_op_threads,
                               graph_optimization=s.graph_optimization, providers=self.providers())
        except HwnasError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise HwnasError(f"{onnx_path}: onnxruntime ({self.provider}) rejected the model: {exc}") from None

    def bind(self, sess, x: np.ndarray):
        """A zero-argument callable that runs the model once on `x`."""
        feed = {INPUT_NAME: x}
        return lambda: sess.run([OUTPUT_NAME], feed)

    def prepare(self, onnx_path: Path, input_shape: tuple[int, ...]):
        sess = self.session(onnx_path)
        x = random_input(tuple(input_shape[1:]), int(input_shape[0]), int(self.options.get("seed", 0)))
        return self.bind(sess, x), False
