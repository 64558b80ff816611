"""Predicted vs measured latency scatter of a table's validation architectures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.io import save_figure_atomic


def plot_validation(path: Path, table_sum, measured, predicted, device: str, validation: dict) -> None:
    """Scatter of raw table sums and calibrated predictions (None: not calibrated) against measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs, vm = np.asarray(table_sum, float), np.asarray(measured, float)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    raw = validation.get("raw") or {}
    ax.scatter(vm, vs, s=18, marker="x", color="tab:gray",
               label=f"table sum (tau {raw.get('kendall_tau', float('nan')):.2f}, MAPE {raw.get('mape_pct', float('nan')):.1f}%)")
    pts = [vm, vs]
    if predicted is not None:
        pred = np.asarray(predicted, float)
        cal = validation.get("calibrated") or {}
        mode = validation.get("calibration_mode") or "linear"
        ax.scatter(vm, pred, s=18, color="tab:blue",
                   label=f"calibrated, {mode} (tau {cal.get('kendall_tau', float('nan')):.2f}, "
                         f"MAPE {cal.get('mape_pct', float('nan')):.1f}%, "
                         f"±10% {100 * cal.get('within_10pct', float('nan')):.0f}%)")
        pts.append(pred)
    lo, hi = min(p.min() for p in pts), max(p.max() for p in pts)
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="predicted = measured")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="tab:green", alpha=0.12, label="±10%")
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{device}: {len(vm)} validation architectures", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
