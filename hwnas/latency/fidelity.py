"""How well predicted latencies match measured ones: rank correlation and relative error."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def fidelity(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """Kendall tau, Spearman rho (scipy), MAPE (%), share within +-5% and +-10% of measured, n."""
    from scipy.stats import kendalltau, spearmanr

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or p.size < 2:
        raise ValueError("fidelity needs two 1-D arrays of one length >= 2")
    rel = np.abs(p - m) / m
    return {"n": int(p.size), "kendall_tau": float(kendalltau(p, m).statistic),
            "spearman_rho": float(spearmanr(p, m).statistic), "mape_pct": float(100 * rel.mean()),
            "within_5pct": float(np.mean(rel <= 0.05)), "within_10pct": float(np.mean(rel <= 0.10))}


MIN_INTERVAL = 20  # validation architectures below which no interval is given


def fidelity_interval(predicted: Sequence[float], measured: Sequence[float], level: float = 0.95,
                      min_n: int = MIN_INTERVAL) -> dict | None:
    """How sure a validation's figures are, from its n architectures alone: a `level` interval of
    Kendall tau (normal, with the jackknife standard error, the classic one for a U-statistic;
    deterministic) and of the share within +-10% (scipy's Wilson score interval of a binomial
    share). 50 architectures pin tau down to about +-0.03 (docs/latency.md, "How sure a
    validation is"). None below `min_n` architectures: with fewer than MIN_INTERVAL the jackknife
    interval covers far less than it says (64% at 10, measured there)."""
    from scipy.stats import binomtest, kendalltau, norm

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.ndim != 1:
        raise ValueError("fidelity_interval needs two 1-D arrays of one length")
    n = p.size
    if n < max(min_n, 3):
        return None
    tau = kendalltau(p, m).statistic
    loo = np.array([kendalltau(np.delete(p, i), np.delete(m, i)).statistic for i in range(n)])
    se = float(np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))
    z = float(norm.ppf(0.5 + level / 2))
    within = int(np.sum(np.abs(p - m) / m <= 0.10))
    ci = binomtest(within, n).proportion_ci(confidence_level=level, method="wilson")
    return {"level": level, "n": int(n), "kendall_tau": [float(max(tau - z * se, -1.0)), float(min(tau + z * se, 1.0))],
            "kendall_tau_se": se, "within_10pct": [float(ci.low), float(ci.high)],
            "method": "Kendall tau +- z * its jackknife standard error; within 10%: Wilson score interval"}


def calibration_curve(cal_sum, cal_meas, val_sum, val_meas, ks=(2, 3, 5, 10, 20, 40), draws: int = 50,
                      seed: int = 0, mode: str = "linear", cal_classes=None, val_classes=None,
                      cal_kernels=None, val_kernels=None, classes=None) -> list[dict]:
    """Validation error of calibrations fitted on k of the calibration architectures.

    For each k <= n_cal, `draws` seeded random k-subsets (one when k = n_cal); returns per k the
    median, mean and std over draws of validation MAPE and the mean within-10% share. The validation set is never
    used for fitting. mode "per_op" fits per-op-class calibrations (needs the class costs,
    latency_model.fit_per_op), "layout" adds the runtime kernel counts (needs the counts,
    fit_layout); below their minimum k those are the linear fit.
    """
    from hwnas.latency.model import apply_calibration, fit

    cs, cm = np.asarray(cal_sum, float), np.asarray(cal_meas, float)
    vs, vm = np.asarray(val_sum, float), np.asarray(val_meas, float)
    n_cls = 0 if cal_classes is None else np.asarray(cal_classes).shape[1]
    cx = np.zeros((len(cs), n_cls)) if cal_classes is None else np.asarray(cal_classes, float)
    vx = np.zeros((len(vs), n_cls)) if val_classes is None else np.asarray(val_classes, float)
    cr = None if cal_kernels is None else np.asarray(cal_kernels, float)
    vr = None if val_kernels is None else np.asarray(val_kernels, float)
    rng = np.random.default_rng(seed)
    out = []
    for k in ks:
        if k > len(cs):
            continue
        mapes, w10 = [], []
        for _ in range(1 if k == len(cs) else draws):
            pick = rng.choice(len(cs), size=k, replace=False)
            if np.ptp(cs[pick]) == 0:
                continue
            cal = fit(mode, cs[pick], cx[pick], cm[pick], None if cr is None else cr[pick], classes)
            rel = np.abs(apply_calibration(cal, vs, vx, kernels=vr) - vm) / vm
            mapes.append(100 * rel.mean())
            w10.append(np.mean(rel <= 0.10))
        if mapes:
            out.append({"k": int(k), "draws": len(mapes), "val_mape_pct_median": float(np.median(mapes)),
                        "val_mape_pct_mean": float(np.mean(mapes)),
                        "val_mape_pct_std": float(np.std(mapes)), "val_within_10pct_mean": float(np.mean(w10))})
    return out
