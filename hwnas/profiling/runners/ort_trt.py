"""onnxruntime with the TensorRT execution provider (CUDA as fallback), IO binding on the GPU.

Engines are cached beside the table run (`engine_cache` option) so warm-up does not rebuild.
"""
from __future__ import annotations

from hwnas.profiling.runners.base import RUNNERS
from hwnas.profiling.runners.ort_cuda import OrtCudaRunner


@RUNNERS.register("ort_trt")
class OrtTrtRunner(OrtCudaRunner):
    name = "ort_trt"
    provider = "TensorrtExecutionProvider"

    def providers(self) -> list:
        opts = {"device_id": 0, "trt_fp16_enable": self.settings.precision == "fp16"}
        cache = self.options.get("engine_cache")
        if cache:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache))
        return [(self.provider, opts), ("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
