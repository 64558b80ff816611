"""Check the seed papers' headline claims on NAS-Bench-201, one function per claim.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.seed_claims --claims lanas
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.seed_claims --claims lanas --seeds 20 --max-queries 5000

Each claim function takes the parsed arguments, prints what it measured and returns a
markdown section; the section is written into docs/search_quality.md (`--no-docs` to skip).
Add a claim by writing `claim_<name>(args) -> str` and registering it in CLAIMS.
"""
from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section


# --- shared: queries until the global optimum ------------------------------------------------
def queries_to_optimum(task: tuple) -> dict:
    """Run one searcher on NB-201 (no latency budget) until it queries an architecture with
    the space's best accuracy; returns the number of accuracy queries (None if censored).

    task: (searcher, searcher kwargs, dataset, seed, max_queries). The search loop is hwnas's
    own (an already evaluated architecture is answered free), stopped at the optimum.
    """
    searcher, kw, dataset, seed, max_q = task
    import torch

    torch.set_num_threads(1)
    from hwnas.search import build_setup, make_searcher
    from hwnas.search_config import make_search_cfg
    from hwnas.search_loop import TimedSearcher, run_search
    from hwnas.termination import Target

    cfg = make_search_cfg(searcher=searcher, dataset=dataset, latency_ms=None, queries=max_q, seed=seed, **kw)
    s = build_setup(cfg)
    best = float(s.evaluator.all_accuracy().max())
    timed = TimedSearcher(make_searcher(cfg.searcher, s.problem, seed))
    t0 = time.perf_counter()
    result = run_search(s.problem, s.evaluator, timed, termination=Target(lambda ev: ev.accuracy >= best - 1e-9))
    evals = result.history
    found = len(evals) if result.reason == "target reached" else None
    return dict(searcher=searcher, seed=seed, found=found, queries=len(evals),
                search_s_per_query=timed.seconds / max(len(evals), 1), wall_s=time.perf_counter() - t0)


def _censored_median(found: list, cap: int) -> float:
    return float(np.median([f if f is not None else cap + 1 for f in found]))


def _pool_size(dataset: str) -> int:
    from hwnas.search import build_setup
    from hwnas.search_config import make_search_cfg

    s = build_setup(make_search_cfg(dataset=dataset, latency_ms=None, queries=1))
    return len(s.problem.feasible_pool())


def _random_median(n: int, k: int) -> int:
    """Median first-hit query of uniform sampling without replacement (n items, k targets):
    the smallest q with P(no target in q draws) = prod_{i<q} (n-k-i)/(n-i) <= 1/2."""
    p, q = 1.0, 0
    while p > 0.5:
        p *= (n - k - q) / (n - q)
        q += 1
    return q


# --- LaNAS ------------------------------------------------------------------------------------
def claim_lanas(a: argparse.Namespace) -> str:
    """LaNAS: "needs several times fewer samples than random search and regularized evolution
    to reach the global optimum" (22x / 14.6x on NAS-Bench-101). Here: NB-201 CIFAR-10 test
    accuracy, no latency budget, every searcher single-objective (LaNAS objective=accuracy,
    regularized evolution objective=constrained, i.e. plain accuracy)."""
    ds = "cifar10"
    # (label, searcher, options): the first three are the claim; the last is LaNAS with its
    # optional surrogate ranking (EI), refitted every query, shown for information.
    arms = [("lanas", "lanas", dict(objective="accuracy")), ("random", "random", {}),
            ("regularized_evolution", "regularized_evolution", dict(objective="constrained")),
            ("lanas + surrogate (EI)", "lanas", dict(objective="accuracy", surrogate=True, surrogate_every=1))]
    if a.no_surrogate_arm:
        arms = arms[:3]
    tasks = [(name, kw, ds, seed, a.max_queries) for _, name, kw in arms for seed in range(a.seeds)]
    with Pool(a.jobs) as pool:
        rows = pool.map(queries_to_optimum, tasks, chunksize=1)  # in task order
    for (label, _, _), k in zip(arms, range(0, len(rows), a.seeds)):
        for r in rows[k:k + a.seeds]:
            r["label"] = label
    from hwnas.data.nb201 import load_accuracy

    acc = load_accuracy(None)[ds]
    best = float(acc.max())
    n_best = int((acc >= best - 1e-9).sum())
    n_pool = _pool_size(ds)
    rnd_exact = _random_median(n_pool, n_best)
    res = {}
    for name, _, _ in arms:
        got = [r for r in rows if r["label"] == name]
        found = [r["found"] for r in got]
        res[name] = dict(median=_censored_median(found, a.max_queries),
                         hits=sum(f is not None for f in found), runs=len(found),
                         mean_found=float(np.mean([f for f in found if f is not None])) if any(found) else np.nan,
                         s_per_q=float(np.mean([r["search_s_per_query"] for r in got])))
    la = res["lanas"]["median"]
    lines = ["| searcher | median queries to optimum | found / runs | x LaNAS | search s/query |",
             "|---|---|---|---|---|"]
    for name, _, _ in arms:
        r = res[name]
        cens = "" if r["hits"] == r["runs"] else f" ({r['runs'] - r['hits']} runs censored at {a.max_queries})"
        lines.append(f"| {name} | {r['median']:.0f}{cens} | {r['hits']}/{r['runs']} | {r['median'] / la:.2f} "
                     f"| {r['s_per_q']:.4f} |")
    table = "\n".join(lines)
    x_rnd, x_re = res["random"]["median"] / la, res["regularized_evolution"]["median"] / la

    def exact(name: str) -> str:  # a median of censored runs is exact only if most runs found it
        r = res[name]
        return "" if 2 * r["hits"] > r["runs"] else " (a lower bound: most runs censored)"

    def held(x: float) -> str:
        return "held" if x >= 2 else "did not hold"

    verdict = (f"LaNAS reached the optimum with {x_rnd:.1f}x fewer queries than random search{exact('random')} "
               f"and {x_re:.2f}x fewer than regularized evolution{exact('regularized_evolution')} (medians; a "
               f"censored run counts as {a.max_queries + 1}). Against random search the claim **{held(x_rnd)}**; "
               f"against regularized evolution it **{held(x_re)}** (\"several times\" read as >= 2x; the paper "
               f"reports 22x and 14.6x on NAS-Bench-101).")
    for name, _, _ in arms[3:]:
        verdict += (f" {name}: median {res[name]['median']:.0f} queries, {la / res[name]['median']:.2f}x fewer "
                    f"than plain LaNAS, {res['regularized_evolution']['median'] / res[name]['median']:.2f}x fewer "
                    f"than regularized evolution.")
    verdict += (f" For reference, the exact median for uniform sampling without replacement from the "
                f"{n_pool} non-degenerate cells with {n_best} optima is {rnd_exact} queries "
                f"({rnd_exact / la:.1f}x LaNAS's median).")
    print(table)
    print(verdict)
    return (f"#### LaNAS sample efficiency (`benchmarks/seed_claims.py --claims lanas`)\n\n"
            f"Queries until the global optimum of NB-201 CIFAR-10 ({best:.3f}% test accuracy, held by "
            f"{n_best} isomorphic cells) is first queried; no latency budget; {a.seeds} seeds, "
            f"censored at {a.max_queries} queries; degenerate cells are never queried by any searcher. "
            f"LaNAS with objective=accuracy (plain LaNAS), other settings default.\n\n{table}\n\n{verdict}\n\n"
            f"1 thread per run, --jobs {a.jobs}.\n")


CLAIMS: dict[str, Callable[[argparse.Namespace], str]] = {
    "lanas": claim_lanas,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--claims", nargs="+", default=list(CLAIMS), help="any of: " + ", ".join(CLAIMS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--max-queries", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--no-docs", "--no-readme", dest="no_docs", action="store_true",
                   help="print only; leave docs/search_quality.md as it is")
    p.add_argument("--no-surrogate-arm", action="store_true", help="lanas claim: skip the LaNAS + surrogate arm")
    a = p.parse_args()
    unknown = [c for c in a.claims if c not in CLAIMS]
    if unknown:
        p.error(f"unknown claim(s) {', '.join(unknown)}; valid: {', '.join(CLAIMS)}")
    for name in a.claims:
        t = time.perf_counter()
        body = CLAIMS[name](a)
        print(f"[{name}: {time.perf_counter() - t:.0f} s]")
        if not a.no_docs:
            print(f"wrote {write_section('search_quality.md', f'seed_claim_{name}', body, note='other work on the machine')}")


if __name__ == "__main__":
    main()
