"""Ray actors that evaluate architectures, and the pool that keeps them busy and survives faults.

Each actor builds its evaluator once (the training data is loaded once per worker) and then
evaluates one architecture at a time. A worker that dies, an evaluation that raises and one
that passes `timeout_s` are retried on another worker up to `max_retries` times; after that
the architecture is reported as failed, never as an accuracy. A user mistake found by a
worker (an HwnasError: missing data, a corrupt checkpoint) stops the search with its message.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from hwnas import errors
from hwnas.errors import HwnasError
from hwnas.parallel.ray_runtime import import_ray
from hwnas.spaces.base import Arch

POLL_S = 0.5  # longest wait between checks of the evaluations' deadlines


class EvalWorker:
    """The body of one Ray actor (wrapped by ray.remote in WorkerPool)."""

    def __init__(self, make_evaluator: Callable[[], object]):
        self._error: Optional[tuple[str, str]] = None
        try:
            self.evaluator = make_evaluator()
        except HwnasError as exc:  # reported by ready(): the driver stops with this message
            self._error = (type(exc).__name__, str(exc))

    def ready(self):
        return ("error", *self._error) if self._error else ("ok", os.getpid())

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, arch_text: str):
        if self._error:
            return ("error", *self._error)
        ev = self.evaluator
        t0 = time.perf_counter()
        try:
            acc = float(ev.compute(ev.space.parse(arch_text)))
        except HwnasError as exc:
            return ("error", type(exc).__name__, str(exc))
        return ("ok", acc, time.perf_counter() - t0, os.getpid())


@dataclass(frozen=True)
class Outcome:
    """How one architecture's evaluation ended: an accuracy, or failed (accuracy None) and why."""

    key: int
    arch: Arch
    accuracy: Optional[float]
    attempts: int
    reason: Optional[str] = None  # why the last attempt failed
    seconds: float = 0.0  # the successful attempt's compute time on its worker

    @property
    def failed(self) -> bool:
        return self.accuracy is None


@dataclass
class _Job:
    key: int
    arch: Arch
    attempts: int = 0
    avoid: set = field(default_factory=set)  # slots it failed on: a retry goes elsewhere when it can
    reasons: list = field(default_factory=list)


@dataclass
class _Running:
    ref: object
    job: _Job
    started: float


def _user_error(kind: str, message: str) -> HwnasError:
    cls = getattr(errors, kind, HwnasError)
    return cls(message) if isinstance(cls, type) and issubclass(cls, HwnasError) else HwnasError(message)


class WorkerPool:
    """`workers` Ray actors; submit() architectures, wait() for the ones that end."""

    def __init__(self, make_evaluator: Callable[[], object], workers: int, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, timeout_s: Optional[float] = None, max_retries: int = 2):
        self.ray = import_ray()
        self.make_evaluator = make_evaluator
        self.timeout_s, self.max_retries = timeout_s, int(max_retries)
        # No restarts by Ray itself: the pool replaces a dead actor and decides about the retry.
        self._cls = self.ray.remote(EvalWorker).options(num_cpus=num_cpus, num_gpus=num_gpus,
                                                        max_restarts=0, max_task_retries=0)
        self.actors: list = [None] * int(workers)
        self._starting: dict[int, object] = {}  # slot -> ref of its ready() call
        self._running: dict[int, _Running] = {}
        self._queue: deque[_Job] = deque()
        self._done: list[Outcome] = []
        self.replaced = 0  # actors replaced after a death or a timeout
        self.retries = 0
        self.busy_seconds = 0.0  # compute time of the successful evaluations
        for slot in range(len(self.actors)):
            self._spawn(slot)

    # --- slots -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.actors)

    @property
    def idle(self) -> int:
        """Workers that could start an evaluation now (or as soon as they have started)."""
        return self.size - len(self._running) - len(self._queue)

    def _spawn(self, slot: int) -> None:
        self.actors[slot] = self._cls.remote(self.make_evaluator)
        self._starting[slot] = self.actors[slot].ready.remote()

    def _replace(self, slot: int) -> None:
        try:
            self.ray.kill(self.actors[slot], no_restart=True)
        except Exception:  # already gone
            pass
        self.replaced += 1
        self._spawn(slot)

    def pids(self) -> list[int]:
        """Process ids of the workers (once started): what a test kills."""
        self._await_started()
        return self.ray.get([a.pid.remote() for a in self.actors])

    def _await_started(self) -> None:
        while self._starting:
            self._check_started(self.ray.wait(list(self._starting.values()), num_returns=len(self._starting))[0])

    def _check_started(self, ready_refs) -> None:
        ready_refs = set(ready_refs)
        for slot, ref in list(self._starting.items()):
            if ref not in ready_refs:
                continue
            del self._starting[slot]
            try:
                status = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                raise HwnasError(f"a Ray worker could not start: {_short(exc)}") from None
            if status[0] == "error":
                raise _user_error(status[1], f"on a Ray worker: {status[2]}")

    # --- jobs --------------------------------------------------------------------------------
    def submit(self, key: int, arch: Arch) -> None:
        self._queue.append(_Job(key, arch))
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue:
            free = [s for s in range(self.size) if s not in self._running and s not in self._starting]
            if not free:
                return
            job = self._queue.popleft()
            slot = next((s for s in free if s not in job.avoid), free[0])
            ref = self.actors[slot].evaluate.remote(str(job.arch))
            self._running[slot] = _Running(ref, job, time.perf_counter())

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted architecture ends for good; return those that did
        (an empty list when nothing is submitted)."""
        while not self._done and (self._running or self._queue):
            refs = {r.ref: s for s, r in self._running.items()}
            refs.update({ref: s for s, ref in self._starting.items()})
            timeout = POLL_S
            if self.timeout_s is not None and self._running:
                first = min(r.started for r in self._running.values()) + self.timeout_s
                timeout = max(0.0, min(timeout, first - time.perf_counter()))
            ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=timeout)
            if ready:  # take every one that is ready, not just the first
                ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
            self._check_started(ready)
            for ref in ready:
                slot = refs[ref]
                run = self._running.get(slot)
                if run is not None and run.ref is ref:
                    del self._running[slot]
                    self._finish(slot, run)
            self._expire()
            self._dispatch()
        out, self._done = self._done, []
        return out

    def _finish(self, slot: int, run: _Running) -> None:
        exc_types = self.ray.exceptions
        try:
            result = self.ray.get(run.ref)
        except exc_types.RayActorError as exc:
            self._replace(slot)
            return self._retry(run.job, slot, f"its worker died ({_short(exc)})")
        except exc_types.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            return self._retry(run.job, slot, f"{type(cause).__name__}: {cause}")
        except exc_types.RayError as exc:  # the object or the node was lost
            self._replace(slot)
            return self._retry(run.job, slot, _short(exc))
        if result[0] == "error":
            raise _user_error(result[1], f"evaluating {run.job.arch} on a Ray worker: {result[2]}")
        _, acc, seconds, _pid = result
        self.busy_seconds += seconds
        self._done.append(Outcome(run.job.key, run.job.arch, acc, run.job.attempts + 1, None, seconds))

    def _expire(self) -> None:
        if self.timeout_s is None:
            return
        now = time.perf_counter()
        for slot, run in list(self._running.items()):
            if now - run.started >= self.timeout_s:
                del self._running[slot]
                self._replace(slot)  # the only way to stop a running evaluation
                self._retry(run.job, slot, f"timed out after {self.timeout_s:g} s")

    def _retry(self, job: _Job, slot: int, reason: str) -> None:
        job.attempts += 1
        job.avoid.add(slot)
        job.reasons.append(reason)
        if job.attempts > self.max_retries:
            self._done.append(Outcome(job.key, job.arch, None, job.attempts, reason))
            return
        self.retries += 1
        self._queue.appendleft(job)  # before newer work: results are told in the order asked

    def close(self) -> None:
        """Stop every worker (evaluations still running are abandoned)."""
        self._queue.clear()
        self._running.clear()
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:
                pass


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
