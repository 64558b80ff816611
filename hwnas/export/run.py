"""Reading a `hwnas-search` run directory and choosing which of its architectures to export."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml

from hwnas.errors import DataError, HwnasError

RUN_COLUMNS = ("arch", "accuracy", "latency_ms")
SPACE_DEFAULTS = {"channels": 16, "cells_per_stage": 5}


@dataclass
class RunDir:
    """What `hwnas-export` needs from a run: its summary, front, history and composed config."""

    path: Path
    summary: dict
    pareto: pd.DataFrame
    history: pd.DataFrame | None
    config: dict = field(default_factory=dict)  # .hydra/config.yaml, {} when absent

    @property
    def space(self) -> str:
        return str(self.config.get("space", {}).get("name") or self.summary["space"])

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset", {}).get("name") or self.summary["dataset"])

    @property
    def device(self) -> str:
        dev = self.summary.get("device")
        return str(dev.get("name") if isinstance(dev, dict) else dev)

    @property
    def space_params(self) -> dict:
        """Constructor parameters of the space (config.yaml when present, else defaults)."""
        cfg = self.config.get("space", {}) or {}
        return {k: int(cfg.get(k, v)) for k, v in SPACE_DEFAULTS.items()}

    @property
    def maximize(self) -> bool:
        """Whether the run's `accuracy` column is higher-is-better (False for error metrics)."""
        return bool((self.config.get("dataset", {}) or {}).get("maximize", True))

    @property
    def latency_budget(self) -> float | None:
        value = (self.summary.get("constraints") or {}).get("latency_ms")
        return None if value is None else float(value)

    def predicted(self, arch: str) -> dict | None:
        """The run's figures for `arch`: its pareto.csv row, else its history.csv row."""
        for df in (self.pareto, self.history):
            if df is not None:
                rows = df[df["arch"] == arch]
                if len(rows):
                    return _row_dict(rows.iloc[0])
        return None


def _row_dict(row: pd.Series) -> dict:
    out: dict[str, Any] = {}
    for key in ("accuracy", "latency_ms", "energy_mj", "feasible", "query", "index"):
        if key in row.index and not _is_missing(row[key]):
            value = row[key]
            if key == "feasible":
                out[key] = _as_bool(value)
            elif key in ("query", "index"):
                out[key] = int(value)
            else:
                out[key] = float(value)
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def load_run(path: str | Path) -> RunDir:
    """Read and validate a run directory; a clear HwnasError says what is missing or corrupt."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise HwnasError(f"run directory {path} does not exist; pass run=<a hwnas-search output directory>")
    summary = _read_summary(path / "summary.json")
    pareto = _read_table(path / "pareto.csv", required=True)
    if pareto is None or pareto.empty:
        raise HwnasError(f"{path / 'pareto.csv'}: the run's Pareto front is empty (no feasible "
                         f"architecture); relax the constraints and search again, or pass archs=[...]")
    history = _read_table(path / "history.csv", required=False)
    return RunDir(path, summary, pareto, history, _read_config(path / ".hydra" / "config.yaml"))


def _read_summary(path: Path) -> dict:
    if not path.is_file():
        raise HwnasError(f"{path.parent} is not a hwnas-search run directory: {path.name} is missing")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: corrupt JSON ({exc}); re-run the search or restore the file") from None
    if not isinstance(summary, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    missing = [k for k in ("space", "dataset", "device") if k not in summary]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}; not written by hwnas-search?")
    return summary


def _read_table(path: Path, required: bool) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise HwnasError(f"{path.parent} is not a hwnas-search run directory: {path.name} is missing")
        return None
    try:
        df = pd.read_csv(path, dtype={"arch": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header); re-run the search or restore the file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); restore the file") from None
    missing = [c for c in RUN_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; header has "
                        f"{', '.join(map(str, df.columns))}")
    for col in ("accuracy", "latency_ms"):
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise DataError(f"{path}, line {row + 2}: column {col!r} has {df[col].iloc[row]!r}, not a number")
        df[col] = values
    return df


def _read_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: corrupt YAML ({exc}); delete it to use the default space parameters") from None
    return cfg if isinstance(cfg, dict) else {}


# --- selection --------------------------------------------------------------------------

def objectives(front: pd.DataFrame, maximize: bool = True) -> np.ndarray:
    """n x 2 array of (error, latency_ms), both minimised; error = 100 - accuracy if maximised."""
    acc = front["accuracy"].to_numpy(dtype=float)
    err = 100.0 - acc if maximize else acc
    return np.column_stack([err, front["latency_ms"].to_numpy(dtype=float)])


def knee_index(points: np.ndarray) -> int:
    """Row of the knee of a 2-objective front (n x 2, minimised).

    Objectives are scaled to [0, 1] over the front; the knee is the point farthest from the
    line through the two extremes (best error, best latency). Ties (e.g. 2 points) go to the
    lower error.
    """
    pts = np.asarray(points, dtype=float)
    if len(pts) <= 2:
        return int(np.lexsort((pts[:, 1], pts[:, 0]))[0])
    lo, span = pts.min(axis=0), np.ptp(pts, axis=0)
    z = (pts - lo) / np.where(span > 0, span, 1.0)
    a = z[np.lexsort((z[:, 1], z[:, 0]))[0]]  # best error
    b = z[np.lexsort((z[:, 0], z[:, 1]))[0]]  # best latency
    d = b - a
    norm = float(np.hypot(*d))
    dist = np.abs(d[0] * (z[:, 1] - a[1]) - d[1] * (z[:, 0] - a[0])) / norm if norm > 0 else np.zeros(len(z))
    best = dist.max()
    candidates = np.flatnonzero(np.isclose(dist, best, rtol=0, atol=1e-12))
    return int(candidates[np.argmin(pts[candidates, 0])])


def best_under_budget_index(points: np.ndarray, budget_ms: float | None) -> int:
    """Row with the lowest error among latency <= budget (no budget: the lowest error)."""
    pts = np.asarray(points, dtype=float)
    ok = np.ones(len(pts), bool) if budget_ms is None else pts[:, 1] <= budget_ms
    if not ok.any():
        raise HwnasError(f"no front architecture has latency <= {budget_ms} ms (fastest: "
                         f"{pts[:, 1].min():.4g} ms); raise latency_budget_ms or use select=all")
    rows = np.flatnonzero(ok)
    return int(rows[np.lexsort((pts[rows, 1], pts[rows, 0]))[0]])


def select_rows(run: RunDir, mode: str, budget_ms: float | None = None) -> list[int]:
    """Rows of run.pareto to export for select=`mode`."""
    from hwnas.export.config import SELECT_MODES

    pts = objectives(run.pareto, run.maximize)
    if mode == "all":
        return list(range(len(pts)))
    if mode == "knee":
        return [knee_index(pts)]
    if mode == "best_under_budget":
        return [best_under_budget_index(pts, budget_ms if budget_ms is not None else run.latency_budget)]
    raise HwnasError(f"unknown select={mode!r}; valid: {', '.join(SELECT_MODES)} (or archs=[...])")


def resolve_archs(space, items: Sequence[Any]) -> list:
    """archs=[...] entries (arch strings or benchmark indices) -> space archs, in order, deduplicated."""
    archs, seen = [], set()
    for item in items:
        if isinstance(item, bool):
            raise HwnasError(f"archs entry {item!r} is neither an architecture string nor an index")
        if isinstance(item, int) or (isinstance(item, str) and item.strip().lstrip("-").isdigit()):
            arch = space.from_index(int(item))
        elif isinstance(item, str):
            arch = space.parse(item)
        else:
            raise HwnasError(f"archs entry {item!r} is neither an architecture string nor an index")
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    if not archs:
        raise HwnasError("archs=[] selects nothing; pass architecture strings or indices, or drop archs")
    return archs
