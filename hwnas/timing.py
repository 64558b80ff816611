"""The one timing loop and the one statistics function of hwnas: the profiler's runners, the
export's latency (`time_onnx`) and the TensorRT engines all time through here, so their figures
compare.

`time_callable(run, warmup, repeats)`  warm-up, then `repeats` timed calls (perf_counter, or the
                                        call's own figure when `self_timed`: CUDA events).
`time_interleaved(runs, ...)`           several models timed in ROUNDS: each round times every
                                        model a share of its repeats, round-robin, so a burst of
                                        load on a busy machine hits all models alike instead of
                                        the one being timed.
`ReferenceClock`                        a fixed model timed first in every round: the machine's
                                        speed in that round, by which every model's runs of the
                                        round are scaled (see the class).
`summarize(samples)`                    median, IQR, p10/p90/p99, mean, min, n, outliers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

# Rounds of interleaved timing (each model gets repeats/ROUNDS timed runs per round). Many short
# rounds: a shared cloud CPU changes speed in phases of seconds (docs/latency.md, "Why tables
# missed"), and a round must be short against a phase for the reference clock to track it.
ROUNDS = 20
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
                     self_timed: bool = False, clock=None, first_calls: int | None = None) -> list[list[np.ndarray]]:
    """samples[i][r]: ms of model i's runs in round r. Every model is warmed up first; then each
    round times every model in turn (round-robin). `first_calls` caps the first model's runs per
    round (a reference clock needs a few runs a round, not as many as the models it times)."""
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
            n = min(size, first_calls) if i == 0 and first_calls else size
            out[i].append(_timed(run, n, self_timed, clock))
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


@dataclass
class ReferenceClock:
    """The machine's speed, read off a fixed reference model timed first in every round.

    A shared (cloud) CPU does not run at one speed. On the AMD EPYC guests this project is
    developed on, with the guest itself idle, models slow by 25-80% together for seconds at a time
    (another tenant on the same cores; docs/latency.md): timings taken minutes apart disagree by
    more than any table can be right. With the reference timed first in each round, round r's
    speed is s_r = median(reference runs in r) / level_ms, and each model's runs of that round are
    divided by s_r, so every timing of a profile is expressed at one machine speed. The slow-down
    is not quite the same for every model (convolution-heavy ones slow more than memory-bound
    ones), so the reference is a typical member of the space and what is left is measured: the
    profile times some architectures twice, minutes apart (the noise ceiling).

    `level_ms` is fixed by the first batch timed (or read back from a resumed table); `speeds`
    keeps every round's s_r, so the profile can report how much the machine's speed varied."""

    level_ms: float | None = None
    speeds: list[float] = field(default_factory=list)
    calls: int = 5  # reference runs per round: enough for its median to read the speed

    def correct(self, per_round: Sequence[Sequence[np.ndarray]], reference: Sequence[np.ndarray]
                ) -> list[list[np.ndarray]]:
        """per_round[i][r] scaled to the level speed, using the reference's rounds `reference[r]`."""
        medians = np.array([np.median(r) for r in reference])
        if self.level_ms is None:
            self.level_ms = float(np.median(np.concatenate(list(reference))))
        speed = medians / self.level_ms
        self.speeds.extend(float(v) for v in speed)
        return [[np.asarray(rounds[r]) / speed[r] for r in range(len(speed))] for rounds in per_round]

    def drift(self) -> dict | None:
        """How the machine's speed varied over the rounds seen: p10, p50, p90 of s_r / median s_r
        (1.0 everywhere on a machine of constant speed)."""
        if not self.speeds:
            return None
        s = np.asarray(self.speeds) / np.median(self.speeds)
        p10, p50, p90 = np.percentile(s, [10, 50, 90])
        return {"speed_p10": float(p10), "speed_p50": float(p50), "speed_p90": float(p90), "rounds": len(s)}
