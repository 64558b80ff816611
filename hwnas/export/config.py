"""Typed configuration of `hwnas-export` (ConfigStore name `export_schema`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

SELECT_MODES = ("all", "knee", "best_under_budget")


@dataclass
class ExportConfig:
    run: str = MISSING  # run directory written by hwnas-search
    out: Optional[str] = None  # default: <run>/export
    select: str = "all"  # all | knee | best_under_budget (of pareto.csv)
    archs: Optional[List[Any]] = None  # explicit NAS-Bench-201 strings or indices; overrides select
    latency_budget_ms: Optional[float] = None  # best_under_budget: default the run's constraint
    opset: int = 17
    exporter: str = "torchscript"  # torchscript | dynamo
    batch: Optional[int] = None  # fixed batch size; null = dynamic batch axis
    verify_batches: List[int] = field(default_factory=lambda: [1, 8])  # with a fixed batch: that one
    atol: float = 1e-4  # |onnx - torch| <= atol + rtol * |torch|
    rtol: float = 1e-3
    seed: int = 0  # weight initialisation and verification inputs
    weights: Optional[str] = None  # torch state_dict checkpoint; null = the run's trained weights
    # (evaluator=train), else random init (seeded)
    accuracy_tol: float = 0.1  # trained runs: ONNX and torch test accuracy agree within this many points
    simplify: bool = False  # onnxslim (optional extra `simplify`)
    latency_warmup: int = 10  # onnxruntime CPU latency on this machine
    latency_repeats: int = 50
    threads: int = 1  # onnxruntime intra-op threads for verification and latency
    tensorrt: bool = True  # build and verify engines where TensorRT and a CUDA GPU exist
    fp16: bool = False  # also an FP16 engine
    trt_workspace_mb: int = 1024
    trt_atol: float = 1e-3  # engine vs onnxruntime (FP32; FP16 uses 10x)
    trt_rtol: float = 1e-2
    data_dir: Optional[str] = None  # else the run's summary data_dir, else $HWNAS_DATA_DIR
    progress: bool = True
    plot: bool = True


def store_export_schema() -> None:
    ConfigStore.instance().store(name="export_schema", node=ExportConfig)
