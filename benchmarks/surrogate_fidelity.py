"""How well the ensemble surrogate ranks NAS-Bench-201 architectures from few queries.

For each dataset (cifar10, cifar100, ImageNet16-120) and n in --ns: train an
`EnsembleSurrogate` on n random architectures (one-hot encoding, benchmark test accuracy),
predict 1,000 other random architectures, and report Kendall tau and Spearman rho between
prediction and truth, mean +- std over --seeds seeds. Architectures are drawn from the
non-degenerate ones (a cell with no input-output path is known useless for free, and no
searcher queries it). Prints a markdown table and writes it into docs/searchers.md.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.surrogate_fidelity
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.surrogate_fidelity --ns 25 --seeds 1 --test 200
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy.stats import kendalltau, spearmanr

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

DATASETS = ["cifar10", "cifar100", "ImageNet16-120"]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from hwnas.search import build_setup
    from hwnas.search_config import make_search_cfg
    from hwnas.surrogates import EnsembleSurrogate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ns", nargs="+", type=int, default=[25, 50, 100, 200])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--no-docs", "--no-readme", dest="no_docs", action="store_true",
                   help="print only; leave docs/searchers.md as it is")
    a = p.parse_args()

    rows, fit_s = [], []
    for ds in DATASETS:
        s = build_setup(make_search_cfg(dataset=ds, latency_ms=None, queries=1))
        archs = list(s.space.enumerate())
        ok = np.nonzero(~np.array([s.space.is_degenerate(x) for x in archs]))[0]
        X = np.stack([s.space.encode(archs[i], "onehot") for i in ok])
        y = s.evaluator.all_accuracy()[ok]
        for n in a.ns:
            taus, rhos = [], []
            for seed in range(a.seeds):
                rng = np.random.default_rng([seed, n])
                perm = rng.permutation(len(ok))
                tr, te = perm[:n], perm[n:n + a.test]
                t = time.perf_counter()
                m = EnsembleSurrogate(seed=seed).fit(X[tr], y[tr])
                fit_s.append(time.perf_counter() - t)
                mean, _ = m.predict(X[te])
                taus.append(kendalltau(mean, y[te])[0])
                rhos.append(spearmanr(mean, y[te])[0])
            rows.append((ds, n, np.mean(taus), np.std(taus), np.mean(rhos), np.std(rhos)))
            print(f"{ds:15s} n={n:4d} tau {np.mean(taus):.3f} rho {np.mean(rhos):.3f}", file=sys.stderr)

    lines = ["| dataset | n train | Kendall tau | Spearman rho |", "|---|---|---|---|"]
    lines += [f"| {ds} | {n} | {t:.3f} ± {ts:.3f} | {r:.3f} ± {rs:.3f} |" for ds, n, t, ts, r, rs in rows]
    table = "\n".join(lines)
    print(table)
    print(f"\nfit time: median {np.median(fit_s):.3f} s, max {np.max(fit_s):.3f} s")
    if not a.no_docs:
        body = (
            "## Surrogate fidelity (`benchmarks/surrogate_fidelity.py`)\n\n"
            f"`EnsembleSurrogate` (5 MLPs 30-64-64-1, bootstrap + seeded inits, 200 full-batch Adam "
            f"steps) on the one-hot encoding of NAS-Bench-201 cells, trained on n random "
            f"non-degenerate architectures, tested on {a.test} others; mean ± std over {a.seeds} seeds.\n\n"
            f"{table}\n\nFit time per surrogate: median {np.median(fit_s):.3f} s, max {np.max(fit_s):.3f} s "
            "(1 thread).\n")
        print(f"wrote {write_section('searchers.md', 'surrogate_fidelity', body)}")


if __name__ == "__main__":
    main()
