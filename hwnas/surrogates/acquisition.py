"""Acquisition functions: pure numpy functions, all objectives minimised, higher score = better.

Shapes: `n` candidates, `m` objectives, `p` points on the current front, `s` Monte-Carlo
samples. Error is the only uncertain objective: latency (and energy) come from the table,
so they enter as known values.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from hwnas.pareto import hypervolume_2d, non_dominated


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement below `best` of a Gaussian N(mean, std^2) (minimisation).

    mean, std: (n,); best: scalar (the lowest value observed). Returns (n,) >= 0.
    """
    mean, std = np.asarray(mean, dtype=float), np.maximum(np.asarray(std, dtype=float), 1e-12)
    z = (best - mean) / std
    return np.maximum((best - mean) * norm.cdf(z) + std * norm.pdf(z), 0.0)


def upper_confidence(mean: np.ndarray, std: np.ndarray, beta: float) -> np.ndarray:
    """Optimistic score for a minimised quantity: -(mean - beta * std). (n,), (n,) -> (n,)."""
    return -(np.asarray(mean, dtype=float) - float(beta) * np.asarray(std, dtype=float))


def feasible_score(mean: np.ndarray, std: np.ndarray, feasible_mask: np.ndarray,
                   beta: float = 1.0) -> np.ndarray:
    """`upper_confidence(mean, std, beta)` where feasible, -inf where not. All (n,)."""
    score = upper_confidence(mean, std, beta)
    return np.where(np.asarray(feasible_mask, dtype=bool), score, -np.inf)


def mask_infeasible(score: np.ndarray, feasible_mask: np.ndarray) -> np.ndarray:
    """Any (n,) score with -inf where `feasible_mask` (n,) is False."""
    return np.where(np.asarray(feasible_mask, dtype=bool), np.asarray(score, dtype=float), -np.inf)


def _hvi_curve(known: np.ndarray, front: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of HVI(e) for one candidate whose other objectives are `known` (m-1,).

    Adding (e, known) to `front` (p x m) gains HVI(e) = integral from e to ref[0] of A(x) dx,
    where A(x) is the (m-1)-D volume of the box [known, ref[1:]] not dominated by the front
    points with error <= x. A is a step function changing at the front's error values, so
    HVI is piecewise linear and exact at any e by interpolation between the returned knots.
    Returns (xs, g): increasing error knots and HVI at them (g[-1] = 0 at ref[0]).
    """
    if np.any(known >= ref[1:]):
        return np.array([ref[0] - 1.0, ref[0]]), np.zeros(2)
    order = np.argsort(front[:, 0], kind="stable") if len(front) else np.zeros(0, dtype=int)
    fr = front[order]
    fr = fr[fr[:, 0] < ref[0]]
    box = float(np.prod(ref[1:] - known))
    # A on each interval [x_k, x_{k+1}): front points with error <= x_k dominate part of the box.
    xs = np.concatenate([fr[:, 0], [ref[0]]]) if len(fr) else np.array([ref[0]])
    areas = []
    for k in range(len(fr)):
        P = np.maximum(fr[: k + 1, 1:], known)  # clip into the box: the box part they dominate
        if P.shape[1] == 1:
            covered = float(ref[1] - P[:, 0].min())
        elif P.shape[1] == 2:
            covered = hypervolume_2d(P, ref[1:])
        else:
            from hwnas.pareto import hypervolume
            covered = hypervolume(P, ref[1:])
        areas.append(max(box - covered, 0.0))
    # Integrate from the right: g(ref0) = 0, g(x_k) = g(x_{k+1}) + A_k (x_{k+1} - x_k).
    g = np.zeros(len(xs))
    for k in range(len(xs) - 2, -1, -1):
        g[k] = g[k + 1] + areas[k] * (xs[k + 1] - xs[k])
    # Left of the best front error nothing dominates the box: slope = the whole box.
    lo = xs[0] - 1.0
    return np.concatenate([[lo], xs]), np.concatenate([[g[0] + box * 1.0], g])


def hv_improvement(mean_err: np.ndarray, std_err: np.ndarray, latency: np.ndarray,
                   front_points: np.ndarray, ref: np.ndarray, n_samples: int = 128,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Expected hypervolume improvement of (error, latency[, energy]) by Monte Carlo over error.

    mean_err, std_err: (n,) Gaussian posterior of each candidate's error.
    latency: (n,) or (n x (m-1)) known objectives (latency, then energy).
    front_points: (p x m) evaluated points (only the non-dominated ones matter).
    ref: (m,) reference point. n_samples: s. rng: the samples' source (common random numbers:
    one draw of s standard normals shared by all candidates, so scores compare fairly).
    Returns (n,) >= 0. Exact HVI per sample (piecewise-linear in the error, see _hvi_curve).
    """
    mean_err = np.asarray(mean_err, dtype=float).reshape(-1)
    std_err = np.asarray(std_err, dtype=float).reshape(-1)
    known = np.asarray(latency, dtype=float).reshape(len(mean_err), -1)
    ref = np.asarray(ref, dtype=float).reshape(-1)
    if known.shape[1] + 1 != len(ref):
        raise ValueError(f"ref has {len(ref)} objectives but candidates have {known.shape[1] + 1}")
    front = np.asarray(front_points, dtype=float).reshape(-1, len(ref))
    front = front[np.all(front < ref, axis=1)]
    front = front[non_dominated(front)] if len(front) else front
    rng = rng if rng is not None else np.random.default_rng(0)
    z = rng.standard_normal(int(n_samples))
    out = np.zeros(len(mean_err))
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for i in range(len(mean_err)):
        key = known[i].tobytes()  # candidates sharing latency share the curve
        if key not in cache:
            cache[key] = _hvi_curve(known[i], front, ref)
        xs, g = cache[key]
        e = mean_err[i] + std_err[i] * z
        # np.interp clamps left of xs[0]: extend linearly there with slope -(box volume).
        slope = (g[0] - g[1]) / (xs[1] - xs[0]) if len(xs) > 1 else 0.0
        vals = np.where(e < xs[0], g[0] + slope * (xs[0] - e), np.interp(e, xs, g))
        out[i] = float(np.mean(np.where(e >= ref[0], 0.0, vals)))
    return out
