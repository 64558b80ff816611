"""How sure a profile's validation is: how far n held-out architectures pin a table's Kendall tau
down, and whether the interval the profile reports (hwnas.latency.fidelity.fidelity_interval)
holds what it says. Cross-validated on a table with many end-to-end timings (no timing here).

Each draw fits the profile's calibration (`layout`) on k architectures, validates it on n others
as a profile does, and scores it on all the rest as well: that tau, on hundreds of
architectures, stands for the table's true one. Per n: the mean and spread of the validation's
tau, how often it reaches 0.95 and 95% within +-10%, the mean width of the 95% interval, and its
coverage (the share of draws whose interval holds the tau on the rest). Then where the errors
are: the prediction error of the same calibrations on all other architectures, by latency quintile.

    hwnas-profile calibrate=570 validate=30 device=many out_dir=benchmarks/results/many
    python -m benchmarks.validation_size --table benchmarks/results/many/many.json

The table goes to stdout and into docs/latency.md (section `validation_size:<cpu>`; `--no-docs` to skip).
"""
from __future__ import annotations

import argparse

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.calibration_features import layout_features
    from benchmarks.docs_section import report_table_study, table_source
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from calibration_features import layout_features
    from docs_section import report_table_study, table_source


def calibrated_draws(S, K, y, k: int, draws: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(architectures in the draw's random order, prediction of every architecture) per draw: the
    profile's calibration (`layout`) fitted on the first k of them. Fitted once; every study reads them."""
    from hwnas.latency.model import apply_calibration, fit

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        idx = rng.permutation(len(y))
        c = fit("layout", S[idx[:k]], None, y[idx[:k]], K[idx[:k]])
        out.append((idx, apply_calibration(c, S, kernels=K)))
    return out


def draws_for(fits, y, k: int, n: int) -> np.ndarray:
    """(draws, 5): validation tau, validation within 10%, interval low, interval high, tau on the
    rest, each draw validated on the n architectures after its k calibration ones."""
    from hwnas.latency.fidelity import fidelity, fidelity_interval

    out = []
    for idx, pred in fits:
        val, rest = idx[k:k + n], idx[k + n:]
        f, ci = fidelity(pred[val], y[val]), fidelity_interval(pred[val], y[val], min_n=5)  # below the profile's minimum too
        out.append((f["kendall_tau"], f["within_10pct"], *ci["kendall_tau"], fidelity(pred[rest], y[rest])["kendall_tau"]))
    return np.array(out)


def errors_by_size(fits, y, k: int, bins: int = 5) -> list[tuple]:
    """Relative error of the draws' calibrations on all architectures but their k, by latency
    quintile (of the measured latency): (lo ms, hi ms, mean error, sd, share within 10%)."""
    err = [[] for _ in range(len(y))]
    for idx, pred in fits:
        for i in idx[k:]:
            err[i].append(pred[i] / y[i] - 1)
    edges = np.quantile(y, np.linspace(0, 1, bins + 1))
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        e = np.concatenate([err[i] for i in np.flatnonzero((y >= lo) & (y <= hi))])
        out.append((lo, hi, e.mean(), e.std(), np.mean(np.abs(e) <= 0.10)))
    return out


def main() -> None:
    from hwnas.latency.table import LatencyTable
    from hwnas.spaces import SPACES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="a NAS-Bench-201 CIFAR-10 table with many e2e timings")
    ap.add_argument("--n", type=int, nargs="+", default=[10, 20, 30, 50, 100], help="validation architectures")
    ap.add_argument("--k", type=int, default=20, help="calibration architectures (the profile's default)")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    _, S, K, y = layout_features(table, SPACES.get("nb201")())
    fits = calibrated_draws(S, K, y, args.k, args.draws, args.seed)
    ns = [n for n in args.n if args.k + n <= len(y) - 100]  # leave hundreds to stand for the truth
    lines = ["| validation architectures | tau: mean ± sd | tau >= 0.95 | >= 95% within ±10% | "
             "95% interval (mean) | coverage | tau on the rest |", "|---|---|---|---|---|---|---|"]
    for n in ns:
        r = draws_for(fits, y, args.k, n)
        cover = np.mean((r[:, 2] <= r[:, 4]) & (r[:, 4] <= r[:, 3]))
        lines.append(f"| {n} | {r[:, 0].mean():.3f} ± {r[:, 0].std():.3f} | {100 * np.mean(r[:, 0] >= 0.95):.0f}% | "
                     f"{100 * np.mean(r[:, 1] >= 0.95):.0f}% | ±{(r[:, 3] - r[:, 2]).mean() / 2:.3f} | "
                     f"{100 * cover:.0f}% | {r[:, 4].mean():.3f} |")
    lines += ["", "| measured latency (quintile) | prediction error: mean | sd | within ±10% |", "|---|---|---|---|"]
    for lo, hi, mean, sd, w10 in errors_by_size(fits, y, args.k):
        lines.append(f"| {lo:.2f}-{hi:.2f} ms | {100 * mean:+.1f}% | {100 * sd:.1f}% | {100 * w10:.0f}% |")
    note = (f"{table_source(args.table, table, len(y))}; layout calibration on k={args.k}; {args.draws} random "
            f"draws per row; truth: one timing per architecture (the mean of two where the table re-timed it)")
    report_table_study("latency.md", "validation_size", table, "\n".join(lines), note, docs=not args.no_docs)


if __name__ == "__main__":
    main()
