"""Linear vs per-op-class vs layout calibration on a latency table's stored end-to-end timings (no timing).

Repeated random splits of the table's e2e architectures: fit on k, score on all the others
(Kendall tau, Spearman rho, MAPE, within 5/10%), mean and std over draws; and leave-one-out.

    python benchmarks/calibration_cv.py                       # the committed CPU table
    python benchmarks/calibration_cv.py --table latency_tables/<device>.json --draws 200
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hwnas.latency.fidelity import fidelity
from hwnas.latency.model import LatencyModel, apply_calibration, fit
from hwnas.latency.table import TABLE_DIR, LatencyTable
from hwnas.spaces import SPACES

KEYS = ("kendall_tau", "spearman_rho", "mape_pct", "within_5pct", "within_10pct")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=TABLE_DIR / "cpu-ort-intel-xeon-processor-t1-b1.json")
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    space = SPACES.get(table.fingerprint.get("space", "nb201"))()
    table.calibration = None  # raw sums and class costs
    model = LatencyModel(table, space, table.fingerprint.get("dataset", "cifar10"))
    archs = [space.parse(s) for s in table.e2e]
    S, X, R = model.table_sum(archs), model.class_costs(archs), model.reorders(archs)
    modes = ("linear", "per_op", "layout")
    y = np.array([table.e2e[str(a)]["median_ms"] for a in archs])
    n = len(y)
    print(f"{args.table.name}: {n} architectures timed end to end; raw table sum: "
          + "  ".join(f"{k} {v:.3f}" for k, v in fidelity(S, y).items() if k in KEYS))
    rng = np.random.default_rng(args.seed)
    for k in args.ks:
        scores = {m: [] for m in modes}
        for _ in range(args.draws):
            pick = rng.choice(n, size=k, replace=False)
            rest = np.setdiff1d(np.arange(n), pick)
            for mode in scores:
                cal = fit(mode, S[pick], X[pick], y[pick], R[pick])
                f = fidelity(apply_calibration(cal, S[rest], X[rest], reorders=R[rest]), y[rest])
                scores[mode].append([f[key] for key in KEYS])
        for mode, rows in scores.items():
            r = np.array(rows)
            mu, sd = r.mean(0), r.std(0)
            print(f"k={k:2d} {mode:6s} (fit on {k}, scored on {n - k}, {args.draws} draws): "
                  f"tau {mu[0]:.3f}±{sd[0]:.3f}  rho {mu[1]:.3f}±{sd[1]:.3f}  MAPE {mu[2]:.2f}±{sd[2]:.2f}%  "
                  f"within 5% {100 * mu[3]:.0f}±{100 * sd[3]:.0f}%  within 10% {100 * mu[4]:.0f}±{100 * sd[4]:.0f}%")
        lin = np.array(scores["linear"])
        for mode in modes[1:]:
            new = np.array(scores[mode])
            print(f"k={k:2d} {mode} vs linear, same draws: lower MAPE in {100 * np.mean(new[:, 2] < lin[:, 2]):.0f}%, "
                  f"higher tau in {100 * np.mean(new[:, 0] > lin[:, 0]):.0f}% (ties: {100 * np.mean(new[:, 2] == lin[:, 2]):.0f}%)")
    for mode in modes:
        keep = [np.arange(n) != i for i in range(n)]
        pred = np.array([apply_calibration(fit(mode, S[k], X[k], y[k], R[k]), S[i:i + 1], X[i:i + 1],
                                           reorders=R[i:i + 1])[0] for i, k in enumerate(keep)])
        f = fidelity(pred, y)
        print(f"leave-one-out {mode:6s}: tau {f['kendall_tau']:.3f}  rho {f['spearman_rho']:.3f}  MAPE {f['mape_pct']:.2f}%  "
              f"within 5% {100 * f['within_5pct']:.0f}%  within 10% {100 * f['within_10pct']:.0f}%")


if __name__ == "__main__":
    main()
