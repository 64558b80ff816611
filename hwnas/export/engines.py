"""TensorRT engines of an exported ONNX model, verified against onnxruntime (`hwnas-export`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.export.checks import compare_outputs, summarise_checks
from hwnas.export.config import ExportConfig
from hwnas.io import atomic_path, sha256_file
from hwnas.onnx_io import INPUT_NAME, OUTPUT_NAME, ort_session, random_input
from hwnas.timing import summarize


def tensorrt_engines(onnx_path: Path, input_shape: tuple, batches: tuple, cfg: ExportConfig) -> dict:
    """FP32 (+ FP16) engines verified against onnxruntime, or why they were skipped."""
    from hwnas.profiling import tensorrt_engine as trt

    if not cfg.tensorrt:
        return {"status": "skipped", "reason": "tensorrt=false"}
    reason = trt.unavailable_reason()
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    sess = ort_session(onnx_path, cfg.threads)
    engines, ok = [], True
    for fp16 in ([False, True] if cfg.fp16 else [False]):
        precision = "fp16" if fp16 else "fp32"
        path = onnx_path.with_suffix(f".{precision}.engine")
        # The cache is recorded by name: the export is built in a staging folder, then moved.
        cache = onnx_path.parent / "trt_timing.cache"
        build = {"precision": precision, "workspace_mb": cfg.trt_workspace_mb, "profile_batch": list(trt.PROFILE_BATCH),
                 "timing_cache": cache.name}
        rec: dict[str, Any] = {"precision": precision, "file": path.name, "build": build}
        try:
            t0 = time.perf_counter()
            blob = trt.build_engine(onnx_path, fp16=fp16, workspace_mb=cfg.trt_workspace_mb,
                                    timing_cache=str(cache))
            build["seconds"] = round(time.perf_counter() - t0, 3)
            runner = trt.EngineRunner(blob)
            scale = 10.0 if fp16 else 1.0  # half precision carries ~3 significant digits
            atol, rtol = cfg.trt_atol * scale, cfg.trt_rtol * scale
            per_batch = {}
            for b in batches:
                x = random_input(input_shape, b, cfg.seed)
                (ref,) = sess.run([OUTPUT_NAME], {INPUT_NAME: x})
                per_batch[str(b)] = compare_outputs(runner.run(x), ref, atol, rtol)
            rec["verification"] = summarise_checks(per_batch, atol=atol, rtol=rtol, seed=cfg.seed,
                                                      reference="onnxruntime-cpu")
            if not rec["verification"]["passed"]:
                raise HwnasError(f"{precision} engine output differs from onnxruntime beyond atol={atol}, rtol={rtol}")
            times = runner.time(random_input(input_shape, cfg.batch or 1, cfg.seed),
                                warmup=cfg.latency_warmup, repeats=cfg.latency_repeats)
            t = summarize(times)  # the profiler's statistics (hwnas/timing.py)
            rec["gpu_compute_ms"] = {"median": t.median_ms, "iqr": t.iqr_ms, "n": t.n, "batch": cfg.batch or 1}
            with atomic_path(path, suffix=".engine") as tmp:
                tmp.write_bytes(blob)
            rec["size_bytes"], rec["sha256"], rec["status"] = path.stat().st_size, sha256_file(path), "ok"
        except HwnasError as exc:
            ok = False
            rec.update(status="failed", error=str(exc))
        engines.append(rec)
    return {"status": "ok" if ok else "failed", "engines": engines}
