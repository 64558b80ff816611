"""What a Ray worker needs to build the search's evaluator itself: the config, not the object.

Shipping the recipe (a few dataclasses) instead of the evaluator means each worker reads its
own copy of the data once, on its own node, and nothing large crosses the object store.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from hwnas.config import SearchConfig
from hwnas.errors import ConfigError


@dataclass(frozen=True)
class EvaluatorRecipe:
    cfg: SearchConfig
    data_dir: Optional[str]
    run_dir: str  # trained weights go to <run_dir>/checkpoints (shared storage on a cluster)

    def __call__(self):
        from hwnas.evaluators import EVALUATORS
        from hwnas.spaces import make_space

        data_dir = None if self.data_dir is None else Path(self.data_dir)
        space = make_space(self.cfg.space, data_dir)
        # workers=1: this evaluator runs its evaluations itself, here
        ev_cfg = replace(self.cfg.evaluator, threads=worker_threads(self.cfg.evaluator), workers=1)
        evaluator = EVALUATORS.get(ev_cfg.name)(space, ev_cfg, self.cfg.dataset, self.cfg.budget.queries,
                                                data_dir, seed=self.cfg.seed)
        evaluator.attach_run_dir(Path(self.run_dir))
        return evaluator


def worker_threads(ev_cfg) -> int:
    """Torch threads of one worker: evaluator.threads, else its whole CPUs (at least one), so N
    workers on N x num_cpus cores never oversubscribe them."""
    return int(ev_cfg.threads) or max(1, math.floor(ev_cfg.num_cpus))


def uses_ray(cfg: SearchConfig) -> bool:
    return cfg.evaluator.workers > 1 or bool(cfg.ray.address)


def check_parallel(cfg: SearchConfig) -> None:
    """The parallel-evaluation keys (evaluator.workers ..., ray.*), checked at start-up."""
    ev_cfg, ray_cfg = cfg.evaluator, cfg.ray

    def bad(key: str, want: str):
        group, name = key.split(".")
        raise ConfigError(f"{key}={getattr(ev_cfg if group == 'evaluator' else ray_cfg, name)!r}: must be {want}")

    if ev_cfg.workers < 1:
        bad("evaluator.workers", "an integer >= 1 (1: no Ray)")
    if not (ev_cfg.num_cpus > 0 and math.isfinite(ev_cfg.num_cpus)):
        bad("evaluator.num_cpus", "a number > 0 (fractions allowed)")
    if not (ev_cfg.num_gpus >= 0 and math.isfinite(ev_cfg.num_gpus)):
        bad("evaluator.num_gpus", "a number >= 0 (fractions allowed)")
    if ev_cfg.timeout_s is not None and not ev_cfg.timeout_s > 0:
        bad("evaluator.timeout_s", "a number of seconds > 0, or null (no limit)")
    if ev_cfg.max_retries < 0:
        bad("evaluator.max_retries", "an integer >= 0")
    if ray_cfg.num_cpus is not None and ray_cfg.num_cpus < 1:
        bad("ray.num_cpus", "an integer >= 1, or null (all of this machine's CPUs)")
    if ray_cfg.object_store_mb < 80:  # Ray refuses a smaller store
        bad("ray.object_store_mb", ">= 80")
