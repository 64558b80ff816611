"""Plots people look at: the accuracy-latency front of a search."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.io import save_figure_atomic


def _steps(lat: np.ndarray, acc: np.ndarray, maximize: bool) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(lat, kind="stable")
    return lat[order], acc[order]


def plot_front(path: Path, latency: np.ndarray, accuracy: np.ndarray, feasible: np.ndarray,
               front: np.ndarray, *, title: str, metric: str = "accuracy (%)", maximize: bool = True,
               latency_budget: float | None = None, true_latency: np.ndarray | None = None,
               true_accuracy: np.ndarray | None = None, all_latency: np.ndarray | None = None,
               all_accuracy: np.ndarray | None = None) -> None:
    """Evaluated points (feasible / infeasible), the found front, the budget line and, for
    tabular spaces, the whole space and its true front in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    if all_latency is not None:
        ax.scatter(all_latency, all_accuracy, s=2, c="0.85", label="whole space", rasterized=True)
    if true_latency is not None and len(true_latency):
        x, y = _steps(true_latency, true_accuracy, maximize)
        ax.step(x, y, where="post", c="0.45", lw=1.2, label="true front")
    feasible = np.asarray(feasible, dtype=bool)
    ax.scatter(latency[~feasible], accuracy[~feasible], s=12, marker="x", c="tab:red", label="evaluated, infeasible")
    ax.scatter(latency[feasible], accuracy[feasible], s=12, c="tab:blue", alpha=0.7, label="evaluated, feasible")
    if len(front):
        x, y = _steps(latency[front], accuracy[front], maximize)
        ax.step(x, y, where="post", c="tab:orange", lw=1.8)
        ax.scatter(x, y, s=30, c="tab:orange", edgecolors="k", zorder=3, label="found front")
    if latency_budget is not None:
        ax.axvline(latency_budget, c="tab:green", ls="--", label=f"budget {latency_budget:g} ms")
    if len(accuracy):
        # Zoom on the interesting part: disconnected cells sit at chance accuracy far below.
        good = accuracy[feasible] if feasible.any() else accuracy
        ref = [np.max(good)] + ([np.max(true_accuracy)] if true_accuracy is not None and len(true_accuracy) else [])
        lo, hi = np.percentile(good, 20), max(ref)
        pad = 0.08 * max(hi - lo, 1e-6)
        ax.set_ylim(lo - pad, hi + pad)
        right = max(np.max(latency), 1.5 * latency_budget if latency_budget else 0.0)
        ax.set_xlim(left=0.0, right=1.05 * right)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)
