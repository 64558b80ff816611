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
                     self_timed: bool = False, clock=None, first_calls: int | None = None,
                     first_models: int = 1) -> list[list[np.ndarray]]:
    """samples[i][r]: ms of model i's runs in round r. Every model is warmed up first; then each
    round times every model in turn (round-robin). `first_calls` caps the runs per round of the
    first `first_models` models (a reference clock needs a few runs a round, not as many as the
    models it times)."""
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
            n = min(size, first_calls) if i < first_models and first_calls else size
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
    """The machine's speed, read off two fixed reference models, a light and a heavy one, timed
    first in every round.

    A shared (cloud) CPU does not run at one speed. On the AMD EPYC guests this project is
    developed on, with the guest itself idle, models slow by 25-80% together for seconds at a time
    (another tenant on the same cores; docs/latency.md): timings taken minutes apart disagree by
    more than any table can be right. Round r's speed as each reference saw it is
    s_kr = median(reference k's runs in r) / level_k. The slow-down is not the same for every model:
    convolution-heavy ones slow more than light, memory-bound ones. So each model's runs of round r
    are divided by s_r interpolated between the light and the heavy reference's speeds (in logs),
    at the model's own place between the two levels (clipped to them): the same 160 architectures
    timed twice agreed within 10% for 92% of them this way, 83% with one mid-sized reference
    (benchmarks/clock_repeatability.py).
    One reference also works (every model scaled by its speed).

    `levels_ms` is fixed by the first batch timed (or read back from a resumed table); `speeds`
    keeps every round's speed (geometric mean over the references), so the profile can report
    how much the machine's speed varied."""

    levels_ms: list[float] | None = None
    speeds: list[float] = field(default_factory=list)
    calls: int = 5  # runs per round of each reference: enough for its median to read the speed

    def correct(self, per_round: Sequence[Sequence[np.ndarray]], references: Sequence[Sequence[np.ndarray]]
                ) -> tuple[list[list[np.ndarray]], list[float]]:
        """(per_round[i][r] scaled to the level speed, each model's median applied speed), from the
        references' rounds `references[k][r]` (light first, heavy last)."""
        if self.levels_ms is None:
            self.levels_ms = [float(np.median(np.concatenate(list(ref)))) for ref in references]
        if len(self.levels_ms) != len(references):
            raise ValueError(f"{len(references)} references for a clock of {len(self.levels_ms)} levels")
        speed = np.array([[np.median(x) for x in ref] for ref in references]) / np.array(self.levels_ms)[:, None]
        log_s = np.log(speed)  # references x rounds
        self.speeds.extend(float(v) for v in np.exp(log_s.mean(axis=0)))
        out, applied = [], []
        for rounds in per_round:
            s = np.exp(self._log_speed(rounds, log_s))
            out.append([np.asarray(rounds[r]) / s[r] for r in range(len(s))])
            applied.append(float(np.median(s)))
        return out, applied

    def _log_speed(self, rounds: Sequence[np.ndarray], log_s: np.ndarray) -> np.ndarray:
        """Per round, the log speed at this model's place between the references' levels: its
        level (its runs scaled by the references' mean speed) in log distance from the light
        level to the heavy one, clipped to [0, 1]."""
        if len(log_s) == 1:
            return log_s[0]
        lo, hi = np.log(self.levels_ms[0]), np.log(self.levels_ms[-1])
        if not hi > lo:
            return log_s.mean(axis=0)
        mean = np.exp(log_s.mean(axis=0))
        level = np.median(np.concatenate([np.asarray(x) / m for x, m in zip(rounds, mean)]))
        w = float(np.clip((np.log(level) - lo) / (hi - lo), 0.0, 1.0))
        return (1 - w) * log_s[0] + w * log_s[-1]

    def drift(self) -> dict | None:
        """How the machine's speed varied over the rounds seen: p10, p50, p90 of s_r / median s_r
        (1.0 everywhere on a machine of constant speed)."""
        if not self.speeds:
            return None
        s = np.asarray(self.speeds) / np.median(self.speeds)
        p10, p50, p90 = np.percentile(s, [10, 50, 90])
        return {"speed_p10": float(p10), "speed_p50": float(p50), "speed_p90": float(p90), "rounds": len(s)}
