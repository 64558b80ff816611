"""Device kind `profiled`: latencies predicted from a latency table hwnas measured itself
(`hwnas-profile`), i.e. table sum + the table's calibration (hwnas/latency/model.py).

`device=<name>` reads <name>.json from the user's tables, else the shipped latency_tables/
(hwnas/latency/table.py: table_dirs); `device.path` may
point at any table JSON. For NAS-Bench-201 every architecture is priced at construction (one
vectorised gather), so the source is an IndexedSource like the public tables: searchers,
constraints and the true-front scoring work unchanged.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from hwnas.config import DeviceConfig
from hwnas.errors import ConfigError
from hwnas.latency.base import LATENCY_SOURCES, IndexedSource
from hwnas.latency.verdict import table_verdict
from hwnas.spaces.base import SearchSpace


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
    keys = TimingSettings.__dataclass_fields__
    settings = TimingSettings(**{k: fp[k] for k in keys if k in fp})  # threads, batch, precision ...
    runner = RUNNERS.get(name)(settings)
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


@LATENCY_SOURCES.register("profiled")
def make_profiled(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> IndexedSource:
    if not hasattr(space, "index_codes"):
        raise ConfigError(f"device kind 'profiled' prices every architecture of a tabular space; space "
                          f"{space.name!r} has no benchmark index")
    model = load_model(resolve_table_path(cfg), space, dataset)
    v = table_verdict(model.table)
    if v["level"] == "poor" and str(model.table.path) not in _WARNED:
        # One line, once per table: the search goes on, but its latencies may be far off.
        _WARNED.add(str(model.table.path))
        logging.getLogger("hwnas.latency").warning(
            "latency table %s has verdict POOR (%s): its latencies may be far off; see docs/latency.md",
            model.table.path, v["reason"])
    return ProfiledSource(space, cfg.name, model.predict_codes(space.index_codes()), model)
