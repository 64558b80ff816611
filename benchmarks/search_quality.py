"""Search quality of every searcher against the truth of NAS-Bench-201.

Scenarios x budgets x seeds, with and without a latency budget at the device's 30% latency
quantile. Prints mean +- std of hv_ratio, front_regret and best feasible accuracy, each
searcher's ratio to random search (and NSGA-II), the queries until the true best feasible
architecture was found (median, censored at the budget), and the searcher's own compute per
query. Writes per-run and aggregated CSVs and a plot under benchmarks/results/.

    HWNAS_DATA_DIR=../shared/benchmarks python benchmarks/search_quality.py            # full grid
    HWNAS_DATA_DIR=../shared/benchmarks python benchmarks/search_quality.py --seeds 2 --budgets 50
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hwnas.io import save_figure_atomic, write_csv_atomic  # noqa: E402

SCENARIOS = [("cifar10", "raspi4"), ("cifar100", "pixel3"), ("ImageNet16-120", "1080ti_1"), ("cifar100", "pi5_onnx")]
RESULTS = REPO / "benchmarks" / "results"


def parse_spec(spec: str) -> tuple[str, dict]:
    """`name` or `name:key=value,key=value` (a searcher with options, e.g.
    `lanas:surrogate=true,surrogate_every=1`); values are parsed as YAML scalars."""
    import yaml

    name, _, opts = spec.partition(":")
    kw = {}
    for item in filter(None, opts.split(",")):
        key, _, val = item.partition("=")
        kw[key.strip()] = yaml.safe_load(val)
    return name, kw


def _config(searcher: str, dataset: str, device: str, budget: int, seed: int, latency_ms):
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_search_cfg

    name, kw = parse_spec(searcher)
    return make_search_cfg(searcher=name, device=device, dataset=dataset, latency_ms=latency_ms,
                           queries=budget, seed=seed, **kw)


class TimedSearcher:
    """Wraps a searcher to time its own compute (ask + tell), excluding evaluation."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def ask(self):
        t = time.perf_counter()
        try:
            return self.inner.ask()
        finally:
            self.seconds += time.perf_counter() - t

    def tell(self, evs):
        t = time.perf_counter()
        try:
            return self.inner.tell(evs)
        finally:
            self.seconds += time.perf_counter() - t


def latency_quantile(device: str, dataset: str, q: float = 0.3) -> float:
    from hwnas.search import build_setup

    s = build_setup(_config("random", dataset, device, 1, 0, None))
    return float(np.quantile(s.problem.source.all_latency(), q))


def one_run(task: tuple) -> dict:
    searcher, dataset, device, budget, seed, latency_ms = task
    import warnings

    from hwnas.search import build_setup, make_searcher
    from hwnas.search_loop import run_search

    cfg = _config(searcher, dataset, device, budget, seed, latency_ms)
    s = build_setup(cfg)
    timed = TimedSearcher(make_searcher(cfg.searcher, s.problem, seed))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evals = run_search(s.problem, s.evaluator, timed).history
    wall = time.perf_counter() - t0
    idx = s.space.indices([e.arch for e in evals])
    score = s.scorer.score(idx)
    # The true best feasible architecture (by the metric) and when it was first queried.
    feas_all = np.nonzero(s.scorer.feasible)[0]
    star = feas_all[np.argmin(s.scorer.error[feas_all])]
    hit = np.nonzero(idx == star)[0]
    feas = [e for e in evals if e.feasible]
    return dict(searcher=searcher, dataset=dataset, device=device, budget=budget, seed=seed,
                constrained=latency_ms is not None, latency_ms=latency_ms, queries=len(evals),
                hv_ratio=score.hv_ratio, front_regret=score.front_regret,
                best_feasible_accuracy=max(e.accuracy for e in feas) if feas else np.nan,
                queries_to_best=int(hit[0]) + 1 if len(hit) else np.nan,
                overhead_ms_per_query=1000 * timed.seconds / max(len(evals), 1), wall_s=wall)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "device", "constrained", "budget", "searcher"]
    g = df.groupby(keys, sort=False)
    agg = g.agg(hv_mean=("hv_ratio", "mean"), hv_std=("hv_ratio", "std"),
                regret_mean=("front_regret", "mean"), regret_std=("front_regret", "std"),
                acc_mean=("best_feasible_accuracy", "mean"), acc_std=("best_feasible_accuracy", "std"),
                runs=("seed", "count")).reset_index()
    # Censored median: a run that never found the best counts as budget + 1.
    cens = df.assign(q=df["queries_to_best"].fillna(df["budget"] + 1))
    agg["q_to_best_median"] = cens.groupby(keys, sort=False)["q"].median().to_numpy()
    agg["found_best"] = g["queries_to_best"].apply(lambda s: int(s.notna().sum())).to_numpy()
    for ref in ("random", "nsga2"):
        base = agg[agg["searcher"] == ref].set_index(keys[:-1])
        if base.empty:
            continue
        base = base[["hv_mean", "regret_mean"]].add_suffix(f"_{ref}")
        j = agg.merge(base, left_on=keys[:-1], right_index=True, how="left")
        agg[f"hv_x_{ref}"] = (j["hv_mean"] / j[f"hv_mean_{ref}"]).to_numpy()
        agg[f"regret_x_{ref}"] = (j["regret_mean"] / j[f"regret_mean_{ref}"]).to_numpy()
    return agg


def print_table(agg: pd.DataFrame) -> None:
    cols = ("scenario", "lat", "q", "searcher", "hv_ratio", "front_regret", "best acc", "hv x rnd",
            "regret x rnd", "hv x nsga2", "q->best")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for _, r in agg.iterrows():
        print(f"| {r.dataset} x {r.device} | {'30%' if r.constrained else '-'} | {r.budget} | {r.searcher} "
              f"| {r.hv_mean:.3f} ± {r.hv_std:.3f} | {r.regret_mean:.2f} ± {r.regret_std:.2f} "
              f"| {r.acc_mean:.2f} ± {r.acc_std:.2f} | {r.get('hv_x_random', np.nan):.2f} "
              f"| {r.get('regret_x_random', np.nan):.2f} | {r.get('hv_x_nsga2', np.nan):.2f} "
              f"| {r.q_to_best_median:.0f} ({r.found_best}/{r.runs}) |")


def plot(agg: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = agg[["dataset", "device"]].drop_duplicates().to_records(index=False)
    fig, axes = plt.subplots(2, len(scen), figsize=(4 * len(scen), 6.5), squeeze=False, sharex=True)
    for col, (ds, dev) in enumerate(scen):
        for row, constrained in enumerate((False, True)):
            ax = axes[row, col]
            sub = agg[(agg.dataset == ds) & (agg.device == dev) & (agg.constrained == constrained)]
            for name, g in sub.groupby("searcher", sort=False):
                ax.errorbar(g["budget"], g["hv_mean"], yerr=g["hv_std"], marker="o", capsize=3, label=name)
            ax.set_title(f"{ds} x {dev}, {'30% latency budget' if constrained else 'no budget'}", fontsize=8)
            ax.set_xlabel("queries")
            ax.set_ylabel("hv_ratio")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


def main() -> None:
    from hwnas.searchers import SEARCHERS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--searchers", nargs="+", default=SEARCHERS.names(),
                   help="names, or name:key=value,... for a searcher with options")
    p.add_argument("--budgets", nargs="+", type=int, default=[50, 100, 200])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--scenarios", nargs="+", type=int, default=list(range(len(SCENARIOS))),
                   help="indices into " + ", ".join(f"{i}={d}x{v}" for i, (d, v) in enumerate(SCENARIOS)))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--tag", default="search_quality")
    a = p.parse_args()
    for spec in a.searchers:
        name, kw = parse_spec(spec)
        SEARCHERS.get(name).config(**kw)  # fail now on an unknown searcher or option
    tasks = []
    for si in a.scenarios:
        ds, dev = SCENARIOS[si]
        q30 = latency_quantile(dev, ds)
        for lat in (None, q30):
            for budget in a.budgets:
                for name in a.searchers:
                    for seed in range(a.seeds):
                        tasks.append((name, ds, dev, budget, seed, lat))
    from tqdm import tqdm

    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        rows = list(tqdm(pool.imap(one_run, tasks, chunksize=1), total=len(tasks), desc="runs", file=sys.stderr))
    df = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(df, RESULTS / f"{a.tag}_runs.csv", index=False)
    agg = aggregate(df)
    write_csv_atomic(agg, RESULTS / f"{a.tag}.csv", index=False)
    plot(agg, RESULTS / f"{a.tag}.png")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {a.jobs} jobs; "
          f"{len(tasks)} runs in {time.perf_counter() - t0:.0f} s")
    print_table(agg)
    print("\nsearcher compute per query (ms, ask + tell, excluding evaluation; mean over runs):")
    for name, g in df.groupby("searcher"):
        print(f"  {name:24s} {g['overhead_ms_per_query'].mean():8.3f} ms/query")
    print(f"\nwrote {RESULTS / (a.tag + '.csv')}, {RESULTS / (a.tag + '_runs.csv')}, {RESULTS / (a.tag + '.png')}")


if __name__ == "__main__":
    main()
