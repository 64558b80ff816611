"""How well predicted latencies match measured ones: rank agreement and relative error."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

FIELDS = ("tau", "rho", "mape", "within5", "within10")


def fidelity(y_true, y_pred) -> dict:
    """Agreement of predictions with the truth, both shape (n,), truth > 0.

    tau: Kendall's tau-b, rho: Spearman's rho (what a search needs: the order);
    mape: mean absolute percentage error (%); within5 / within10: share (0..1) of predictions
    within 5% / 10% of the truth.
    """
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1 or t.size < 2:
        raise ValueError(f"fidelity needs two 1-D arrays of the same length >= 2, got {t.shape} and {p.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("fidelity needs finite values")
    if np.any(t <= 0):
        raise ValueError("fidelity needs positive true latencies (relative errors divide by them)")
    rel = np.abs(p - t) / t
    with warnings.catch_warnings():
        # A constant prediction (e.g. a model that learned only the base cost) has no ranks;
        # scipy warns and says nan, which is reported as 0 below.
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        # Ranks on values rounded to 1e-9 ms, so float noise of an exact prediction does not
        # break the ties of the truth (many architectures share a latency on simulated devices).
        rt, rp = np.round(t, 9), np.round(p, 9)
        tau = stats.kendalltau(rt, rp).statistic
        rho = stats.spearmanr(rt, rp).statistic
    return {"tau": _num(tau), "rho": _num(rho), "mape": float(100.0 * rel.mean()),
            "within5": float(np.mean(rel <= 0.05)), "within10": float(np.mean(rel <= 0.10))}


def _num(x) -> float:
    # A constant prediction has no rank correlation: scipy says nan, which means "none" here.
    x = float(x)
    return 0.0 if np.isnan(x) else x
