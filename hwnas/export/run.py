"""Choosing which architectures of a `hwnas-search` run to export (the run is read by hwnas.rundir)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from hwnas.errors import HwnasError
from hwnas.rundir import RunDir


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
