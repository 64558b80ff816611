"""Latency sources backed by public tables: benchmark columns, the Pi 5 data, any CSV."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwnas.config import DeviceConfig
from hwnas.data.nb201 import (
    N_ARCHS,
    PI5_FRAMEWORKS,
    latency_devices,
    load_latency,
    load_pi5,
)
from hwnas.data.tables import read_csv_checked
from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.latency.base import LATENCY_SOURCES, IndexedSource
from hwnas.spaces.base import SearchSpace, is_tabular

PI5_DEFAULT_TASK = "cifar100"


def _require_tabular(space: SearchSpace, kind: str) -> None:
    if not is_tabular(space):
        raise ConfigError(f"device kind {kind!r} holds NAS-Bench-201 latencies; space {space.name!r} "
                          f"needs a profiled table (device kind 'profiled')")


@LATENCY_SOURCES.register("benchmark")
def make_benchmark(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> IndexedSource:
    """One device column of nb201_latency_ms.csv (HW-NAS-Bench and HELP measurements)."""
    _require_tabular(space, "benchmark")
    column = cfg.column or cfg.name
    devices = latency_devices(data_dir)
    if column not in devices:
        raise ConfigError(f"unknown benchmark device {column!r}; valid devices: {', '.join(devices)}")
    from hwnas.data.nb201 import LATENCY_FILE

    return IndexedSource(space, cfg.name, load_latency(data_dir)[column].to_numpy(float),
                         origin=f"{LATENCY_FILE}, column {column!r}")


@LATENCY_SOURCES.register("pi5")
def make_pi5(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> IndexedSource:
    """Raspberry Pi 5 latency and energy under one framework (HW-NAS-Bench-360 data).

    The latency is that of the network for `cfg.task`, by default the dataset's own task
    when it is one of the Pi 5 tasks, else the CIFAR-100 network.
    """
    _require_tabular(space, "pi5")
    if cfg.framework not in PI5_FRAMEWORKS:
        raise ConfigError(f"unknown Pi 5 framework {cfg.framework!r}; valid: {', '.join(PI5_FRAMEWORKS)}")
    task = cfg.task or (dataset if dataset in ("ninapro", "darcy") else PI5_DEFAULT_TASK)
    df = load_pi5(data_dir, cfg.framework, task)
    return IndexedSource(space, cfg.name, df["lat_ms_median"].to_numpy(float), df["energy_mj"].to_numpy(float),
                         origin=f"nb360_pi5.csv, framework {cfg.framework}, task {task}")


def read_measurements(space: SearchSpace, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(indices, latency_ms, energy_mj or None) of the architectures a CSV lists, checked."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"device CSV {path} does not exist (from device.path)")
    try:
        head = list(pd.read_csv(path, nrows=0, skipinitialspace=True).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from None
    key = "index" if "index" in head else "arch" if "arch" in head else None
    if key is None or "latency_ms" not in head:
        raise DataError(f"{path}: needs a column 'index' or 'arch' and a column 'latency_ms'; "
                        f"header: {', '.join(map(str, head))}")
    has_energy = "energy_mj" in head
    numeric = ["latency_ms"] + (["energy_mj"] if has_energy else []) + (["index"] if key == "index" else [])
    df = read_csv_checked(path, [key, "latency_ms"], numeric)
    if key == "index":
        raw = df["index"].to_numpy(float)
        bad = np.nonzero((raw != np.round(raw)) | (raw < 0) | (raw >= N_ARCHS))[0]
        if len(bad):
            raise DataError(f"{path}, line {bad[0] + 2}: index {raw[bad[0]]:g} is not in 0..{N_ARCHS - 1}")
        idx = raw.astype(np.int64)
    else:
        idx = np.empty(len(df), dtype=np.int64)
        for i, s in enumerate(df["arch"]):
            try:
                idx[i] = space.index(space.parse(s))
            except HwnasError as exc:
                raise DataError(f"{path}, line {i + 2}: {exc}") from None
    _, first = np.unique(idx, return_index=True)
    if len(first) != len(idx):
        dup = sorted(set(range(len(idx))) - set(first.tolist()))[0]
        raise DataError(f"{path}, line {dup + 2}: architecture index {idx[dup]} listed twice")
    columns = ["latency_ms"] + (["energy_mj"] if has_energy else [])
    for col in columns:
        vals = df[col].to_numpy(float)
        bad = np.nonzero(~np.isfinite(vals) | (vals <= 0))[0]
        if len(bad):
            raise DataError(f"{path}, line {bad[0] + 2}: {col} must be a positive number, got {vals[bad[0]]}")
    energy = df["energy_mj"].to_numpy(float) if has_energy else None
    return idx, df["latency_ms"].to_numpy(float), energy


@LATENCY_SOURCES.register("csv")
def make_csv(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> IndexedSource:
    """Any CSV with `index` or `arch` and `latency_ms` (optionally `energy_mj`), one row per arch."""
    _require_tabular(space, "csv")
    if not cfg.path:
        raise ConfigError("device=csv needs device.path=<file.csv> (columns: index or arch, latency_ms[, energy_mj])")
    path = Path(os.path.expanduser(cfg.path))
    idx, measured, energy_mj = read_measurements(space, path)
    lat = np.full(N_ARCHS, np.nan)
    lat[idx] = measured
    if len(idx) < N_ARCHS:
        missing = np.nonzero(np.isnan(lat))[0]
        raise DataError(f"{path}: no latency for {len(missing)} of {N_ARCHS} architectures (first missing: "
                        f"index {missing[0]}, {space.from_index(int(missing[0]))}); a device CSV must cover the whole "
                        f"space (for a few measured architectures use device=fitted)")
    energy = None
    if energy_mj is not None:
        energy = np.full(N_ARCHS, np.nan)
        energy[idx] = energy_mj
    return IndexedSource(space, cfg.name, lat, energy, origin=str(path))


def make_latency_source(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir):
    """Build the configured device's latency source (kinds registered in LATENCY_SOURCES)."""
    import hwnas.latency  # noqa: F401  (registers every kind)

    return LATENCY_SOURCES.get(cfg.kind)(space, cfg, dataset, data_dir)
