"""Device kind `profiled`: latencies predicted from a latency table hwnas measured itself
(`hwnas-profile`), i.e. table sum + the table's calibration (hwnas/latency/model.py).

`device=<name>` reads <name>.json from the user's tables, else the shipped latency_tables/
(hwnas/latency/table.py: table_dirs); `device.path` may
point at any table JSON. For a tabular space (NAS-Bench-201) every architecture is priced at
construction (one vectorised gather), so the source is an IndexedSource like the public tables:
searchers, constraints and the true-front scoring work unchanged. Any other profilable space
(mbv3) is priced on demand, architecture by architecture, cached (ProfiledArchSource).

device=this_machine on a space without a benchmark table: when its table does not exist yet,
it is measured here first with quick settings (QUICK_PROFILE), said on one line.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.config import DeviceConfig
from hwnas.errors import ConfigError, DataError
from hwnas.latency.base import LATENCY_SOURCES, IndexedSource, LatencySource
from hwnas.latency.verdict import table_verdict
from hwnas.spaces.base import Arch, SearchSpace, is_tabular, require_profilable

# The automatic profile of a non-tabular space (device=this_machine, no table yet): fewer timed
# runs than hwnas-profile's defaults (repeats=300, e2e_repeats=100, validate=50), so that it takes
# a minute or two on a 2-core CPU; `hwnas-profile space=<space> dataset=<dataset> overwrite=true` measures it fully.
QUICK_PROFILE = {"warmup": 5, "repeats": 20, "e2e_repeats": 10, "calibrate": 10, "validate": 5}


def resolve_table_path(cfg: DeviceConfig) -> Path:
    """device.path, else the table named device.name in the user's tables or the shipped ones."""
    from hwnas.latency.table import table_dirs, table_path

    if cfg.path:
        return Path(os.path.expanduser(cfg.path))
    path = table_path(cfg.name)
    if not path.is_file():
        where = " or ".join(str(d) for d in table_dirs())
        raise ConfigError(f"no latency table {cfg.name}.json in {where}; measure it with `hwnas-profile` "
                          f"(device=this_machine means the table hwnas-profile writes with its default settings)")
    return path


def this_machine_fingerprint(table) -> dict | None:
    """The fingerprint the table's runner would record here with the table's settings, or None
    when that runner cannot run here (then there is nothing to compare)."""
    from hwnas.profiling.runners import RUNNERS, TimingSettings

    fp = table.fingerprint
    name = fp.get("runner")
    if name not in RUNNERS:
        return None
    runner = RUNNERS.get(name)(TimingSettings.from_fingerprint(fp))
    try:
        if not runner.available()[0]:
            return None
        return {**fp, **runner.fingerprint()}  # space, dataset, input shape stay the table's own
    except Exception:  # a half-installed GPU stack: no comparison rather than a crash
        return None


def load_model(path: Path, space: SearchSpace, dataset: str | None = None, check_machine: bool = True):
    """LatencyModel of the table at `path` for `space` on `dataset` (default: the table's dataset)."""
    from hwnas.latency.model import LatencyModel
    from hwnas.latency.table import LatencyTable

    table = LatencyTable.load(path)
    if check_machine:
        here = this_machine_fingerprint(table)
        if here is not None:
            from hwnas.latency.table import fingerprint_diff

            diff = fingerprint_diff(table.fingerprint, here)
            if diff:
                warnings.warn(f"latency table {path} was measured on other hardware or software than this machine "
                              f"({'; '.join(diff)}); its latencies describe that device", stacklevel=2)
    fp = table.fingerprint
    # as the table's JSON holds them (a tuple parameter reads back as a list)
    want = json.loads(json.dumps(space.param_values()))
    if not is_tabular(space) and fp.get("space_params") not in (None, want):
        raise ConfigError(f"latency table {path} was profiled for space {space.name} with {fp['space_params']}, not "
                          f"{want}; pick the table measured at these settings, or give hwnas-search a new "
                          f"name (device.name=<new name>), which it measures on first use")
    if fp.get("space") not in (None, space.name):
        raise ConfigError(f"latency table {path} was profiled for space {fp['space']!r}, not {space.name!r}; "
                          f"run hwnas-profile space={space.name}")
    dataset = dataset or fp.get("dataset")
    if fp.get("dataset") not in (None, dataset):
        raise ConfigError(f"latency table {path} was profiled for dataset {fp['dataset']!r}, not {dataset!r} "
                          f"(input size and classifier differ); run hwnas-profile device={table.device} "
                          f"dataset={dataset} or pick a table measured for it")
    return LatencyModel(table, space, dataset)


_WARNED: set[str] = set()  # tables whose poor verdict was already reported in this process


class ProfiledSource(IndexedSource):
    def __init__(self, space, name, latency_ms, model):
        super().__init__(space, name, latency_ms, origin=f"latency table {model.table.path}")
        self.model = model

    def describe(self) -> dict:
        t = self.model.table
        return {"name": self.name, "kind": "profiled", "table": str(t.path), "calibrated": self.model.calibrated,
                "calibration": self.model.calibration if self.model.calibrated else None,
                "fingerprint": t.fingerprint, "verdict": table_verdict(t)["level"]}


class ProfiledArchSource(LatencySource):
    """A profiled table's latencies of a space without a benchmark index, priced on demand (table
    sum + calibration) and cached per architecture."""

    def __init__(self, space, name, model):
        super().__init__(space, name)
        self.model = model
        self._cache: dict[Arch, float] = {}
        # A calibration fitted on a few networks can extrapolate below zero for the smallest ones
        # of a space too large to check whole (nb201's is checked over every architecture). Such
        # predictions are raised to half the fastest network ever timed end to end for the table:
        # below anything measured, yet never a free (always feasible) network.
        medians = [t.get("median_ms") for t in model.table.e2e.values() if isinstance(t, dict)]
        medians = [m for m in medians if isinstance(m, (int, float)) and m > 0]
        self.floor_ms = 0.5 * min(medians) if medians else None
        self.floored = 0

    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        new = [a for a in dict.fromkeys(archs) if a not in self._cache]
        if new:
            pred = self.model.predict(new)
            if self.floor_ms is not None:
                low = np.isfinite(pred) & (pred < self.floor_ms)
                if low.any() and not self.floored:
                    logging.getLogger("hwnas.latency").warning(
                        "latency table %s: its calibration predicts %.3g ms for %s, below half the fastest network "
                        "it timed; such predictions are raised to %.3g ms (re-profile with more calibrate= "
                        "architectures, or recalibrate=true calibration=linear)",
                        self.model.table.path, float(pred[low][0]), new[int(np.argmax(low))], self.floor_ms)
                self.floored += int(low.sum())
                pred = np.where(low, self.floor_ms, pred)
            bad = np.nonzero(~(np.isfinite(pred) & (pred > 0)))[0]
            if len(bad):
                raise DataError(f"latency table {self.model.table.path} predicts {pred[bad[0]]:.4g} ms for {new[bad[0]]} "
                                f"(a latency must be > 0); re-run hwnas-profile device={self.model.table.device} "
                                f"recalibrate=true calibration=linear")
            self._cache.update(zip(new, pred.tolist()))
        return np.array([self._cache[a] for a in archs], dtype=float)

    describe = ProfiledSource.describe


def auto_profile(space: SearchSpace, dataset: str, name: str, log=logging.getLogger("hwnas.latency").warning) -> Path:
    """Measure this machine's table `name` for `space` on `dataset` with QUICK_PROFILE settings."""
    import time

    from hwnas.apps.profile import run_profile
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    log(f"no latency table {name} yet: profiling space {space.name} on {dataset} on this machine with quick settings "
        f"(a minute or two; hwnas-profile space={space.name} dataset={dataset} overwrite=true measures it fully)")
    t0 = time.perf_counter()
    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), device=name, space=space.name, dataset=dataset,
                        progress=False, plot=False, **QUICK_PROFILE)
    report = run_profile(cfg, space)
    logging.getLogger("hwnas.latency").info("profiled %s in %.0f s", report.path, time.perf_counter() - t0)
    return report.path


@LATENCY_SOURCES.register("profiled")
def make_profiled(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> LatencySource:
    require_profilable(space, "device kind 'profiled'")
    if not is_tabular(space) and not cfg.path and cfg.auto_profile:
        from hwnas.latency.table import table_path

        if not table_path(cfg.name).is_file():
            auto_profile(space, dataset, cfg.name)
    model = load_model(resolve_table_path(cfg), space, dataset)
    v = table_verdict(model.table)
    if v["level"] == "poor" and str(model.table.path) not in _WARNED:
        # One line, once per table: the search goes on, but its latencies may be far off.
        _WARNED.add(str(model.table.path))
        logging.getLogger("hwnas.latency").warning(
            "latency table %s has verdict POOR (%s): its latencies may be far off; see docs/latency.md",
            model.table.path, v["reason"])
    if not is_tabular(space):
        return ProfiledArchSource(space, cfg.name, model)
    from hwnas.spaces.nb201 import NB201Space

    if isinstance(space, NB201Space):  # one vectorised gather over the 15,625 codes
        return ProfiledSource(space, cfg.name, model.predict_codes(space.index_codes()), model)
    return ProfiledSource(space, cfg.name, model.predict(list(space.enumerate())), model)
