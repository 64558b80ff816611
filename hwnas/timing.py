"""The one timing loop and the one statistics function of hwnas: the profiler's runners, the
export's latency (`time_onnx`) and the TensorRT engines all time through here, so their figures
compare.

`time_callable(run, warmup, repeats)`  warm-up, then `repeats` timed calls (perf_counter, or the
                                        call's own figure when `self_timed`: CUDA events).
`time_interleaved(runs, ...)`           several models timed in ROUNDS: each round times every
                                        model a share of its repeats, round-robin, so a burst of
                                        load on a busy machine hits all models alike instead of
                                        the one being timed.
`summarize(samples)`                    median, IQR, p10/p90/p99, mean, min, n, outliers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

ROUNDS = 5  # rounds of interleaved timing (each model gets repeats/ROUNDS timed runs per round)
RETIME_REL_IQR = 0.15  # a timing whose IQR / median exceeds this is re-timed ...
MAX_RETIMES = 2  # ... at most this many times; the attempt with the smallest spread is kept


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

    @property
    def rel_iqr(self) -> float:
        """IQR / median: the spread of the runs, scale-free."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else float("inf")


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


def _timed(run: Callable, n: int, self_timed: bool, clock) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        if self_timed:
            out[i] = float(run())
        else:
            t0 = clock()
            run()
            out[i] = (clock() - t0) * 1e3
    return out


def time_callable(run: Callable, warmup: int, repeats: int, self_timed: bool = False, clock=None) -> np.ndarray:
    """Per-call ms of `repeats` calls of `run` after `warmup` untimed ones."""
    (per_round,) = time_interleaved([run], warmup, repeats, 1, self_timed, clock)
    return per_round[0]


def round_sizes(repeats: int, rounds: int) -> list[int]:
    """`repeats` split over at most `rounds` rounds (the first ones one larger), none empty."""
    rounds = max(1, min(rounds, repeats))
    return [repeats // rounds + (r < repeats % rounds) for r in range(rounds)]


def time_interleaved(runs: Sequence[Callable], warmup: int, repeats: int, rounds: int = ROUNDS,
                     self_timed: bool = False, clock=None) -> list[list[np.ndarray]]:
    """samples[i][r]: ms of model i's runs in round r. Every model is warmed up first; then each
    round times every model in turn (round-robin)."""
    import time

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    clock = clock or time.perf_counter
    for run in runs:
        for _ in range(max(warmup, 0)):
            run()
    out: list[list[np.ndarray]] = [[] for _ in runs]
    for size in round_sizes(repeats, rounds):
        for i, run in enumerate(runs):
            out[i].append(_timed(run, size, self_timed, clock))
    return out


def split_half_rel_diff(per_round: Sequence[np.ndarray]) -> float | None:
    """|median of the even rounds - median of the odd rounds| / overall median: how much two
    interleaved timings of one model disagree (None with fewer than 2 rounds)."""
    if len(per_round) < 2:
        return None
    even = np.concatenate(per_round[0::2])
    odd = np.concatenate(per_round[1::2])
    mid = float(np.median(np.concatenate(per_round)))
    return float(abs(np.median(even) - np.median(odd)) / mid) if mid > 0 else None
