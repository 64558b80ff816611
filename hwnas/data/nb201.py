"""Readers for the NAS-Bench-201 family of files in the data directory.

Every file is indexed the NAS-Bench-201 way (index 0..15624, the benchmark's arch string);
the readers check row counts, index order and that the `arch` columns agree.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from hwnas.data.paths import data_file
from hwnas.data.tables import check_range, read_csv_checked
from hwnas.errors import DataError

N_ARCHS = 15625
ACCURACY_FILE = "nb201_accuracy.csv"
LATENCY_FILE = "nb201_latency_ms.csv"
PI5_FILE = "nb360_pi5.csv"
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
PI5_FRAMEWORKS = ("onnx", "litert", "torchmobile")
PI5_TASKS = ("cifar100", "ninapro", "darcy")


def _key(path: Path) -> tuple[str, float, int]:
    # Cache per file version: a file replaced on disk is read again.
    st = path.stat()
    return str(path), st.st_mtime, st.st_size


def _check_index(df: pd.DataFrame, path: Path) -> None:
    idx = pd.to_numeric(df["index"], errors="coerce")
    expected = pd.RangeIndex(len(df))
    bad = (idx.to_numpy() != expected.to_numpy()).nonzero()[0]
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{path}, line {row + 2}: index {df['index'].iloc[row]!r}, expected {row}")


@functools.lru_cache(maxsize=4)
def _accuracy(key: tuple) -> pd.DataFrame:
    path = Path(key[0])
    df = read_csv_checked(path, ["index", "arch", *NB201_DATASETS], NB201_DATASETS, N_ARCHS)
    _check_index(df, path)
    for col in NB201_DATASETS:
        check_range(df, path, col, 0.0, 100.0)  # test accuracy in percent
    return df


def load_accuracy(data_dir: str | os.PathLike | None) -> pd.DataFrame:
    """`index, arch, cifar10, cifar100, ImageNet16-120` (test accuracy, %), in index order."""
    return _accuracy(_key(data_file(data_dir, ACCURACY_FILE)))


@functools.lru_cache(maxsize=4)
def _latency(key: tuple) -> pd.DataFrame:
    path = Path(key[0])
    try:
        head = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); restore the file") from None
    devices = [c for c in head if c not in ("index", "arch")]
    df = read_csv_checked(path, ["index", "arch"], devices, N_ARCHS)
    _check_index(df, path)
    for col in devices:
        # Every public cell is > 0 (disconnected cells are near zero, never zero): a zero or a
        # negative latency would make its architecture look free.
        check_range(df, path, col, 0.0, low_open=True)
    return df


def load_latency(data_dir: str | os.PathLike | None) -> pd.DataFrame:
    """`index, arch` + one latency column (ms) per device, in index order."""
    return _latency(_key(data_file(data_dir, LATENCY_FILE)))


def latency_devices(data_dir: str | os.PathLike | None) -> list[str]:
    return [c for c in load_latency(data_dir).columns if c not in ("index", "arch")]


@functools.lru_cache(maxsize=4)
def _pi5(key: tuple) -> pd.DataFrame:
    path = Path(key[0])
    num = ["index", "lat_ms_median", "lat_ms_var", "energy_mj", "accuracy"]
    df = read_csv_checked(path, ["index", "framework", "task", *num], num,
                          N_ARCHS * len(PI5_FRAMEWORKS) * len(PI5_TASKS))
    check_range(df, path, "lat_ms_median", 0.0, low_open=True)
    check_range(df, path, "lat_ms_var", 0.0)
    check_range(df, path, "energy_mj", 0.0)
    # Accuracy in percent, except darcy's, a relative error (lower is better) that the public
    # file records as a plain real number (3 of its rows are negative): finite only.
    darcy = (df["task"] == "darcy").to_numpy()
    check_range(df, path, "accuracy", 0.0, 100.0, rows=~darcy)
    check_range(df, path, "accuracy", rows=darcy)
    return df


def load_pi5(data_dir: str | os.PathLike | None, framework: str, task: str) -> pd.DataFrame:
    """Pi 5 measurements of one framework on one task, one row per index in index order."""
    path = data_file(data_dir, PI5_FILE)
    df = _pi5(_key(path))
    sub = df[(df["framework"] == framework) & (df["task"] == task)]
    if len(sub) == 0:
        raise DataError(
            f"{path}: no rows for framework={framework!r}, task={task!r}; frameworks: "
            f"{', '.join(PI5_FRAMEWORKS)}; tasks: {', '.join(PI5_TASKS)}"
        )
    sub = sub.sort_values("index", kind="stable").reset_index(drop=True)
    if len(sub) != N_ARCHS or (sub["index"].to_numpy() != range(N_ARCHS)).any():
        raise DataError(f"{path}: framework={framework}, task={task} does not cover indices 0..{N_ARCHS - 1} once each")
    return sub


def benchmark_arch_strings(data_dir: str | os.PathLike | None) -> list[str]:
    """The benchmark's arch strings in index order (from the accuracy file)."""
    return load_accuracy(data_dir)["arch"].tolist()
