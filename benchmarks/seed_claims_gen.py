"""The generative searchers' seed claims (papers.md), measured on NAS-Bench-201 CIFAR-10.

1. AG-Net (Lukasik et al. 2022) finds the CIFAR-10 optimum of NAS-Bench-201 in a few hundred
   queries: queries until a global optimum (the best test accuracy in the data) is first
   queried, no latency budget, median over seeds, censored at --cap (a run that never finds
   it counts as cap + 1), for AG-Net vs random search vs regularized evolution.
2. GA-NAS (Rezaei et al. 2021) beats regularized evolution at the same query budget: best
   accuracy found within 100 / 200 / 500 queries, mean +- std over seeds.

Each (searcher, seed) runs once with budget --cap: the searchers never see the budget, so the
first q queries of that run are exactly a run with budget q. The papers' setting is single
objective, so each searcher runs in its accuracy-only mode (`objective=accuracy`, regularized
evolution `objective=constrained`, which with no budget is plain accuracy); the default
multi-objective modes are reported beside them for reference.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.seed_claims_gen --seeds 10 --cap 500

Prints both tables and writes them into docs/search_quality.md (section seed_claims_gen;
`--no-docs` to skip; a run with --only writes its own section, seed_claims_gen:<labels>).
"""
from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

# (label, registered searcher, its options)
SEARCHERS = [
    ("agnet (accuracy)", "agnet", dict(objective="accuracy")),
    ("agnet (pareto)", "agnet", dict(objective="pareto")),
    ("ganas (accuracy)", "ganas", dict(objective="accuracy")),
    ("ganas (pareto)", "ganas", dict(objective="pareto")),
    ("regularized_evolution (accuracy)", "regularized_evolution", dict(objective="constrained")),
    ("regularized_evolution (sweep)", "regularized_evolution", dict(objective="sweep")),
    ("random", "random", {}),
]


def one_run(task: tuple) -> dict:
    label, name, kw, seed, cap, budgets = task
    import warnings

    from hwnas.search import build_setup, make_searcher
    from hwnas.search_config import make_search_cfg
    from hwnas.search_loop import run_search

    cfg = make_search_cfg(searcher=name, device="raspi4", dataset="cifar10", latency_ms=None,
                          queries=cap, seed=seed, **kw)
    s = build_setup(cfg)
    best_acc = float(np.max(s.evaluator.all_accuracy()))  # the data's optimum (ties: any of them)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evals = run_search(s.problem, s.evaluator, make_searcher(cfg.searcher, s.problem, seed)).history
    wall = time.perf_counter() - t0
    acc = np.array([e.accuracy for e in evals])
    hit = np.nonzero(acc >= best_acc)[0]
    return dict(label=label, seed=seed, optimum=best_acc, wall_s=wall, queries=len(evals),
                q_to_opt=int(hit[0]) + 1 if len(hit) else None,
                **{f"best@{b}": float(acc[:b].max()) for b in budgets})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cap", type=int, default=500)
    p.add_argument("--budgets", nargs="+", type=int, default=[100, 200, 500])
    p.add_argument("--only", nargs="+", default=None, help="labels' first words to run (e.g. agnet random)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/search_quality.md as it is")
    a = p.parse_args()
    budgets = [b for b in a.budgets if b <= a.cap]
    chosen = [s for s in SEARCHERS if a.only is None or s[0].split()[0] in a.only]
    tasks = [(label, name, kw, seed, a.cap, budgets) for label, name, kw in chosen for seed in range(a.seeds)]
    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        rows = pool.map(one_run, tasks, chunksize=1)
    wall = time.perf_counter() - t0
    body = markdown(rows, chosen, budgets, a.cap, a.seeds)
    print(f"{len(tasks)} runs in {wall:.0f} s, --jobs {a.jobs}\n")
    print(body)
    if not a.no_docs:
        name = "seed_claims_gen" + (":" + ",".join(a.only) if a.only else "")
        path = write_section("search_quality.md", name, body,
                             note=f"{len(tasks)} runs in {wall:.0f} s, 1 thread per run, --jobs {a.jobs}")
        print(f"wrote {path}")


def markdown(rows: list[dict], chosen: list, budgets: list[int], cap: int, seeds: int) -> str:
    """The two tables: queries to the optimum, and best accuracy within each budget."""
    out = [f"NAS-Bench-201 CIFAR-10 test accuracy, optimum {rows[0]['optimum']:.6f}, no latency budget, "
           f"{seeds} seeds, each run once with {cap} queries.", "",
           f"**1. Queries until the optimum is first queried** (median; censored at {cap}: not found counts "
           f"{cap + 1})", "",
           "| searcher | median queries to optimum | found within " + str(cap) + " | mean s/run |",
           "|---|---|---|---|"]
    for label, _, _ in chosen:
        rs = [r for r in rows if r["label"] == label]
        q = [r["q_to_opt"] if r["q_to_opt"] is not None else cap + 1 for r in rs]
        found = sum(r["q_to_opt"] is not None for r in rs)
        out.append(f"| {label} | {np.median(q):.0f} | {found}/{len(rs)} | {np.mean([r['wall_s'] for r in rs]):.1f} |")
    out += ["", "**2. Best accuracy found within the budget** (mean ± std)", "",
            "| searcher | " + " | ".join(f"{b} queries" for b in budgets) + " |",
            "|---|" + "---|" * len(budgets)]
    for label, _, _ in chosen:
        rs = [r for r in rows if r["label"] == label]
        cells = [f"{np.mean([r[f'best@{b}'] for r in rs]):.3f} ± {np.std([r[f'best@{b}'] for r in rs], ddof=1):.3f}"
                 for b in budgets]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
