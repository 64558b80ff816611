"""Ray, imported only when a search asks for it, and the instance a search runs on.

A local instance is started for the run and stopped at its end; `ray.address=auto` or
`host:port` joins a running cluster and leaves it running.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from hwnas.config import RayConfig
from hwnas.errors import ConfigError

INSTALL = "pip install 'hwnas[distributed]'"


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"evaluator.workers > 1 and ray.address need Ray, which is not installed: {INSTALL} "
                          f"(or use evaluator.workers=1)") from None
    return ray


@contextlib.contextmanager
def ray_instance(cfg: RayConfig) -> Iterator[object]:
    """Ray, initialised for the block: a local instance (then shut down) or the cluster at cfg.address."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if ray.is_initialized():  # a caller (a notebook, a test) set Ray up: use it as it is
        yield ray
        return
    kw: dict = dict(log_to_driver=False, configure_logging=False)
    if cfg.address:
        kw["address"] = cfg.address
    else:
        # Ray starts its workers at niceness 15; here they do the run's whole work, so they get
        # the driver's priority (a cluster's own setting is left alone).
        os.environ.setdefault("RAY_worker_niceness", "0")
        kw.update(include_dashboard=cfg.dashboard, num_cpus=cfg.num_cpus or os.cpu_count() or 1,
                  object_store_memory=int(cfg.object_store_mb) * 1024 * 1024)
    try:
        ray.init(**kw)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at ray.address={cfg.address}" if cfg.address else "a local Ray instance"
        raise ConfigError(f"cannot start or reach {where}: {exc}. Start one with `ray start --head` "
                          f"or leave ray.address unset") from None
    try:
        yield ray
    finally:
        ray.shutdown()
