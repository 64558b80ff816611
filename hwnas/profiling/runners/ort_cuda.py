"""onnxruntime with the CUDA execution provider; input and output bound on the GPU (IO binding),
so host-device copies are not timed."""
from __future__ import annotations

import numpy as np

from hwnas.onnx_io import INPUT_NAME, OUTPUT_NAME
from hwnas import machine
from hwnas.profiling.runners.base import RUNNERS
from hwnas.profiling.runners.ort_cpu import OrtCpuRunner


@RUNNERS.register("ort_cuda")
class OrtCudaRunner(OrtCpuRunner):
    name = "ort_cuda"
    provider = "CUDAExecutionProvider"

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        return machine.gpu_present()

    def providers(self) -> list:
        return [(self.provider, {"device_id": 0}), "CPUExecutionProvider"]

    def hardware(self) -> dict:
        return {"gpu": machine.gpu_name(), "processor": machine.cpu_model()}

    def bind(self, sess, x: np.ndarray):
        import onnxruntime as ort

        binding = sess.io_binding()
        x_gpu = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        binding.bind_ortvalue_input(INPUT_NAME, x_gpu)
        binding.bind_output(OUTPUT_NAME, "cuda", 0)
        # run_with_iobinding synchronises the provider's stream before returning; the default
        # argument keeps the GPU input alive as long as the call (several are prepared at once).
        return lambda _keep=x_gpu: sess.run_with_iobinding(binding)
