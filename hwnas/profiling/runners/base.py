"""The runner protocol: time one ONNX model on a target, the way the vendors' perf tools do.

A runner owns a target (onnxruntime with a provider, native TensorRT, a remote agent). It
says whether it can run here (`available`), what a measurement depends on (`fingerprint`,
part of a latency table's identity) and times a model: warm-up runs, then many timed runs,
summarised by `summarize` (median, IQR, percentiles, outliers, n); loop and statistics live
in hwnas/timing.py, shared with hwnas-export.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hwnas.timing import (  # noqa: F401  (re-exported: one timing loop, one statistics function)
    MAX_RETIMES,
    RETIME_REL_IQR,
    ROUNDS,
    ReferenceClock,
    Timing,
    round_sizes,
    split_half_rel_diff,
    summarize,
    time_callable,
    time_interleaved,
)
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

    @classmethod
    def from_fingerprint(cls, fingerprint: dict) -> "TimingSettings":
        """The settings a table's fingerprint records (threads, batch, precision ...), defaults for the rest."""
        return cls(**{k: fingerprint[k] for k in cls.__dataclass_fields__ if k in fingerprint})


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

    # Whether the profiler times a reference model in every round (timing.ReferenceClock): on for
    # local runners; off for the remote agent (it times one model at a time itself).
    reference_clock: bool = True

    def prepare(self, onnx_path: Path, input_shape: tuple[int, ...]) -> tuple[Callable, bool]:
        """(a zero-argument call that runs the model once on a seeded random input, whether that
        call returns its own ms). Local runners implement it; then `time` and `time_many` come free."""
        raise NotImplementedError

    def time(self, onnx_path: Path, input_shape: tuple[int, ...]) -> Timing:
        """Time the model at `onnx_path` fed a random float32 input of `input_shape`
        (batch included). Raises HwnasError on a model the target rejects."""
        return self.time_many([(onnx_path, input_shape)])[0][0]

    def time_many(self, models: Sequence[tuple[Path, tuple[int, ...]]], rounds: int = ROUNDS,
                  retime_rel_iqr: float = RETIME_REL_IQR, max_retimes: int = MAX_RETIMES,
                  references: Sequence[tuple[Path, tuple[int, ...]]] = (), clock: ReferenceClock | None = None
                  ) -> list[tuple[Timing, dict]]:
        """(Timing, extra) per model, timed interleaved in `rounds` (timing.time_interleaved).
        A timing whose IQR/median exceeds `retime_rel_iqr` is timed again (interleaved with the
        other such ones), at most `max_retimes` times; the attempt with the smallest spread is
        kept. extra: split_half_rel_diff (two interleaved halves' medians differ by this share),
        retimed (how many times), rounds. A runner without `prepare` times one model after
        another with its own `time` (remote: the agent times).

        With `references` (light, heavy) and `clock` (timing.ReferenceClock), the reference models
        are timed first in every round and each model's runs are scaled to the clock's level speed;
        extra then also has raw_median_ms (unscaled) and speed (the median speed applied to it)."""
        s = self.settings
        try:
            prepared = [self.prepare(p, shape) for p, shape in models]
        except NotImplementedError:
            return [(self._time_one(p, shape), {"retimed": 0, "rounds": 1, "split_half_rel_diff": None})
                    for p, shape in models]
        self_timed = prepared[0][1] if prepared else False
        runs = [r for r, _ in prepared]
        ref_runs = [self.prepare(*r)[0] for r in references] if clock is not None else []

        def measure(idx):
            chosen = [runs[i] for i in idx]
            if not ref_runs:
                per = time_interleaved(chosen, s.warmup, s.repeats, rounds, self_timed)
                return [(summarize(np.concatenate(p)), split_half_rel_diff(p), {}) for p in per]
            timed = time_interleaved([*ref_runs, *chosen], s.warmup, s.repeats, rounds, self_timed,
                                     first_calls=clock.calls, first_models=len(ref_runs))
            raw = timed[len(ref_runs):]
            per, speeds = clock.correct(raw, timed[:len(ref_runs)])
            return [(summarize(np.concatenate(p)), split_half_rel_diff(p),
                     {"raw_median_ms": float(np.median(np.concatenate(q))), "speed": v})
                    for p, q, v in zip(per, raw, speeds)]

        best = measure(range(len(runs)))
        retimed = [0] * len(runs)
        for _ in range(max(max_retimes, 0)):
            noisy = [i for i, (t, _h, _x) in enumerate(best) if t.rel_iqr > retime_rel_iqr]
            if not noisy:
                break
            for i, again in zip(noisy, measure(noisy)):
                retimed[i] += 1
                if again[0].rel_iqr < best[i][0].rel_iqr:
                    best[i] = again
        return [(t, {"split_half_rel_diff": h, "retimed": retimed[i], "rounds": len(round_sizes(s.repeats, rounds)),
                     **x}) for i, (t, h, x) in enumerate(best)]

    def _time_one(self, onnx_path: Path, input_shape: tuple[int, ...]) -> Timing:
        """One model alone, for runners without `prepare` (they override `time`)."""
        if type(self).time is Runner.time:
            raise NotImplementedError(f"runner {self.name} implements neither prepare nor time")
        return type(self).time(self, onnx_path, input_shape)

    def close(self) -> None:
        """Release the target (sessions, connections)."""


RUNNERS: Registry[type[Runner]] = Registry("runner")
