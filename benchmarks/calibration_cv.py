"""Linear vs per-op-class vs layout calibration on a latency table's stored end-to-end timings (no timing).

Repeated random splits of the table's e2e architectures: fit on k, score on all the others
(Kendall tau, Spearman rho, MAPE, within 5/10%), mean and std over draws; and leave-one-out.

    python -m benchmarks.calibration_cv                       # the committed CPU table
    python -m benchmarks.calibration_cv --table latency_tables/<device>.json --draws 200

The table goes to stdout and, for the committed table, into docs/profiling.md (section
calibration_cv; `--no-docs` to skip; another table writes calibration_cv:<table name>).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hwnas.latency.fidelity import fidelity
from hwnas.latency.model import LatencyModel, apply_calibration, fit, table_sum_rule
from hwnas.latency.table import TABLE_DIR, LatencyTable
from hwnas.spaces import SPACES

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

KEYS = ("kendall_tau", "spearman_rho", "mape_pct", "within_5pct", "within_10pct")
COMMITTED = TABLE_DIR / "cpu-ort-intel-xeon-processor-t1-b1.json"


def row(k: str, mode: str, mu, sd=None) -> str:
    """A markdown row: tau, rho (± std), MAPE (± std), within 5% / 10%."""
    pm = (lambda i, f: f"{mu[i]:{f}} ± {sd[i]:{f}}") if sd is not None else (lambda i, f: f"{mu[i]:{f}}")
    return (f"| {k} | {mode} | {pm(0, '.3f')} | {pm(1, '.3f')} | {pm(2, '.1f')}% | {100 * mu[3]:.0f}% "
            f"| {100 * mu[4]:.0f}% |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=COMMITTED)
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20, 40])
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/profiling.md as it is")
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    space = SPACES.get(table.fingerprint.get("space", "nb201"))()
    table.calibration = None  # raw sums and class costs
    model = LatencyModel(table, space, table.fingerprint.get("dataset", "cifar10"),
                         sum_rule=table_sum_rule(space, table.fingerprint))  # what a new calibration uses
    archs = [space.parse(s) for s in table.e2e]
    S, X, R = model.table_sum(archs), model.class_costs(archs), model.runtime_kernels(archs)
    modes = ("linear", "per_op", "layout")
    y = np.array([table.measured_ms(a) for a in archs])
    n = len(y)
    print(f"{args.table.name}: {n} architectures timed end to end; raw table sum: "
          + "  ".join(f"{k} {v:.3f}" for k, v in fidelity(S, y).items() if k in KEYS))
    rng = np.random.default_rng(args.seed)
    md = ["| k | calibration | Kendall tau | Spearman rho | MAPE | within ±5% | within ±10% |",
          "|---|---|---|---|---|---|---|"]
    wins = []
    for k in args.ks:
        scores = {m: [] for m in modes}
        for _ in range(args.draws):
            pick = rng.choice(n, size=k, replace=False)
            rest = np.setdiff1d(np.arange(n), pick)
            for mode in scores:
                cal = fit(mode, S[pick], X[pick], y[pick], R[pick])
                f = fidelity(apply_calibration(cal, S[rest], X[rest], kernels=R[rest]), y[rest])
                scores[mode].append([f[key] for key in KEYS])
        for mode, rows in scores.items():
            r = np.array(rows)
            mu, sd = r.mean(0), r.std(0)
            md.append(row(str(k), mode, mu, sd))
            print(f"k={k:2d} {mode:6s} (fit on {k}, scored on {n - k}, {args.draws} draws): "
                  f"tau {mu[0]:.3f}±{sd[0]:.3f}  rho {mu[1]:.3f}±{sd[1]:.3f}  MAPE {mu[2]:.2f}±{sd[2]:.2f}%  "
                  f"within 5% {100 * mu[3]:.0f}±{100 * sd[3]:.0f}%  within 10% {100 * mu[4]:.0f}±{100 * sd[4]:.0f}%")
        lin = np.array(scores["linear"])
        for mode in modes[1:]:
            new = np.array(scores[mode])
            wins.append(f"k={k}: {mode} has a lower MAPE than linear in {100 * np.mean(new[:, 2] < lin[:, 2]):.0f}% "
                        f"of the draws")
            print(f"k={k:2d} {mode} vs linear, same draws: lower MAPE in {100 * np.mean(new[:, 2] < lin[:, 2]):.0f}%, "
                  f"higher tau in {100 * np.mean(new[:, 0] > lin[:, 0]):.0f}% (ties: {100 * np.mean(new[:, 2] == lin[:, 2]):.0f}%)")
    for mode in modes:
        keep = [np.arange(n) != i for i in range(n)]
        pred = np.array([apply_calibration(fit(mode, S[k], X[k], y[k], R[k]), S[i:i + 1], X[i:i + 1],
                                           kernels=R[i:i + 1])[0] for i, k in enumerate(keep)])
        f = fidelity(pred, y)
        md.append(row(f"{n - 1} (leave-one-out)", mode, [f[key] for key in KEYS]))
        print(f"leave-one-out {mode:6s}: tau {f['kendall_tau']:.3f}  rho {f['spearman_rho']:.3f}  MAPE {f['mape_pct']:.2f}%  "
              f"within 5% {100 * f['within_5pct']:.0f}%  within 10% {100 * f['within_10pct']:.0f}%")

    if not args.no_docs:
        name = "calibration_cv" if args.table.resolve() == COMMITTED.resolve() else f"calibration_cv:{args.table.stem}"
        body = (f"`{args.table.name}`: {n} architectures timed end to end; {args.draws} random splits per k, "
                f"fitted on k, scored on the other {n} - k; mean ± std over splits.\n\n" + "\n".join(md)
                + "\n\nOn the same splits: " + "; ".join(wins) + ".")
        print(f"wrote {write_section('profiling.md', name, body, note='no timing: the stored end-to-end timings')}")


if __name__ == "__main__":
    main()
