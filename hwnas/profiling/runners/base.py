"""The runner protocol: time one ONNX model on a target, the way the vendors' perf tools do.

A runner owns a target (onnxruntime with a provider, native TensorRT, a remote agent). It
says whether it can run here (`available`), what a measurement depends on (`fingerprint`,
part of a latency table's identity) and times a model: warm-up runs, then many timed runs,
summarised by `summarize` (median, IQR, percentiles, outliers, n).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hwnas.registry import Registry


@dataclass(frozen=True)
class TimingSettings:
    """How one model is timed; recorded in a table's fingerprint."""

    warmup: int = 10
    repeats: int = 50
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"  # onnxruntime: disable | basic | extended | all
    batch: int = 1
    precision: str = "fp32"  # fp32 | fp16 (TensorRT)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """Summary of n timed runs of one model, in milliseconds."""

    median_ms: float
    iqr_ms: float
    p10_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    n: int
    outliers: int  # runs beyond 1.5 IQR above p75 or below p25 (kept, only counted)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Timing":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def summarize(samples_ms) -> Timing:
    """Timing of a 1-D array of per-run latencies (ms)."""
    t = np.asarray(samples_ms, dtype=float)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError("timing samples must be a non-empty 1-D array of finite numbers")
    p10, p25, p50, p75, p90, p99 = np.percentile(t, [10, 25, 50, 75, 90, 99])
    iqr = p75 - p25
    outliers = int(np.sum((t > p75 + 1.5 * iqr) | (t < p25 - 1.5 * iqr)))
    return Timing(float(p50), float(iqr), float(p10), float(p90), float(p99), float(t.mean()),
                  float(t.min()), int(t.size), outliers)


class Runner(ABC):
    """Times ONNX models on one target. Subclasses register with `@RUNNERS.register(name)`."""

    name: str = "abstract"

    def __init__(self, settings: TimingSettings, **options):
        self.settings = settings
        self.options = options

    def available(self) -> tuple[bool, str]:
        """(True, "") when this runner can time here, else (False, why not)."""
        return True, ""

    @abstractmethod
    def fingerprint(self) -> dict:
        """What measurements depend on: runtime and versions, provider, processor/GPU, threads,
        batch, precision, graph optimisation level. Two tables compare only when equal."""

    @abstractmethod
    def time(self, onnx_path: Path, input_shape: tuple[int, ...]) -> Timing:
        """Time the model at `onnx_path` fed a random float32 input of `input_shape`
        (batch included). Raises HwnasError on a model the target rejects."""

    def close(self) -> None:
        """Release the target (sessions, connections)."""


RUNNERS: Registry[type[Runner]] = Registry("runner")
