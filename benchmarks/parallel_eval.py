"""Parallel evaluation on Ray: what N workers buy, and what the scheduler itself costs.

1. `--training`: wall time of one training search (evaluator=train, 40 evaluations by default,
   NB-201 with 8 channels and one cell per stage on Fashion-MNIST, one torch thread per
   evaluation) with 1 worker (the in-process path) and with 2 Ray workers of one CPU each; the
   speed-up ratio.
2. `--overhead`: the scheduler alone. A simulated evaluator (the NB-201 table with a fixed sleep
   per query) on a local Ray instance of this machine's CPUs, at 2, 8 and 32 workers with
   fractional CPUs each, for a steady-state searcher (random) and a batch one (NSGA-II, one
   generation per N): the workers' time lost per evaluation (N x wall time minus the time the
   evaluations took on the workers, per evaluation) and their utilisation; `ideal_s` is
   `queries x sleep / N`. Actor start-up is excluded (it is paid once per run) and shown apart.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.parallel_eval --overhead
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.parallel_eval --training --queries 40

Results go to stdout, to benchmarks/results/parallel_*.csv and into docs/parallel.md
(sections `parallel_overhead`, `parallel_training`; `--no-docs` skips that, `--report` rewrites
them from the CSVs without measuring).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_worker_niceness", "0")  # as hwnas's own local instances (ray_runtime.py)

import pandas as pd

from hwnas.io import write_csv_atomic

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import markdown_table, write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import markdown_table, write_section

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


# --- 1. a training search at 1 and 2 workers ----------------------------------------------

def training_cfg(queries: int, workers: int, seed: int, dataset: str = "fashion_mnist", channels: int = 8):
    from hwnas.config import (BudgetConfig, ConstraintsConfig, DatasetConfig, DeviceConfig, EvaluatorConfig,
                              OutputConfig, RayConfig, SearchConfig, SpaceConfig)
    from hwnas.searchers import SEARCHERS

    return SearchConfig(
        space=SpaceConfig(name="nb201", channels=channels, cells_per_stage=1),
        dataset=DatasetConfig(name=dataset, source="files", val_fraction=0.1 if dataset == "fashion_mnist" else 0.2),
        device=DeviceConfig(name="raspi4", kind="benchmark", column="raspi4"),
        # One thread per evaluation in both: the serial run gets what each worker gets.
        evaluator=EvaluatorConfig(name="train", workers=workers, num_cpus=1.0, threads=1),
        searcher=SEARCHERS.get("random").config(), constraints=ConstraintsConfig(latency_ms=float("inf")),
        budget=BudgetConfig(queries=queries), seed=seed, output=OutputConfig(progress=True, plot=False),
        ray=RayConfig(object_store_mb=128))


def bench_training(queries: int, seed: int, dataset: str, channels: int) -> pd.DataFrame:
    from hwnas.search import search

    rows = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            summary = search(training_cfg(queries, workers, seed, dataset, channels), Path(tmp) / "run",
                             log=lambda *a: None)
            wall = time.perf_counter() - t0
        rows.append({"workers": workers, "queries": summary["queries"], "wall_s": round(wall, 1),
                     "s_per_query": round(wall / summary["queries"], 2),
                     "best_val_accuracy": round(summary["best_feasible_accuracy"], 2)})
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    df["speedup"] = (df["wall_s"].iloc[0] / df["wall_s"]).round(2)
    return df


# --- 2. the scheduler's own overhead --------------------------------------------------------

def bench_overhead(worker_counts, sleep_s: float, per_worker: int, seed: int) -> pd.DataFrame:
    import ray

    from hwnas.parallel.loop import run_parallel_search
    from hwnas.parallel.pool import WorkerPool
    from hwnas.parallel.recipe import EvaluatorRecipe
    from hwnas.search import build_setup, make_searcher
    from hwnas.search_config import make_search_cfg
    from hwnas.search_loop import TimedSearcher

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=256 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    rows = []
    try:
        for workers in worker_counts:
            for searcher, kw in (("random", {}), ("nsga2", {"pop_size": workers})):
                queries = per_worker * workers
                cfg = make_search_cfg(searcher=searcher, device="raspi4", latency_ms=None, queries=queries,
                                      seed=seed, **kw)
                cfg = replace(cfg, evaluator=replace(cfg.evaluator, workers=workers, num_cpus=cpus / workers,
                                                     delay_s=sleep_s))
                s = build_setup(cfg)
                with tempfile.TemporaryDirectory() as tmp:
                    pool = WorkerPool(EvaluatorRecipe(cfg, str(s.data_dir), tmp), workers, cpus / workers)
                    t_start = time.perf_counter()
                    pool.pids()  # every actor up: start-up is paid once per run, not per evaluation
                    startup = time.perf_counter() - t_start
                    pool.busy_seconds = 0.0
                    t0 = time.perf_counter()
                    timed = TimedSearcher(make_searcher(cfg.searcher, s.problem, seed))
                    result = run_parallel_search(s.problem, s.evaluator, timed, pool)
                    wall = time.perf_counter() - t0
                    busy = pool.busy_seconds  # the evaluations' own time, timed on the workers
                    pool.close()
                n = result.n_queries
                rows.append({"workers": workers, "cpus_per_worker": round(cpus / workers, 3), "searcher": searcher,
                             "queries": n, "sleep_s": sleep_s, "eval_s": round(busy / n, 3), "wall_s": round(wall, 2),
                             "ideal_s": round(n * sleep_s / workers, 2),
                             # what the scheduler costs: worker time not spent evaluating, per evaluation
                             "lost_ms_per_eval": round(1000 * (wall * workers - busy) / n, 1),
                             # of which the searcher's own ask/tell time on the driver (workers wait on it)
                             "searcher_ms_per_eval": round(1000 * timed.seconds / n, 1),
                             "utilisation": round(busy / (wall * workers), 3), "actor_startup_s": round(startup, 1)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    return pd.DataFrame(rows)


def overhead_section(df: pd.DataFrame) -> tuple[str, str]:
    sleep, per_worker = float(df["sleep_s"].iloc[0]), int(df["queries"].iloc[0] // df["workers"].iloc[0])
    body = f"{markdown_table(df)}\n\n`python -m benchmarks.parallel_eval --overhead --sleep {sleep:g} --per-worker {per_worker}`"
    return body, f"a local Ray instance of {os.cpu_count()} CPUs; {sleep:g} s per simulated evaluation, {per_worker} per worker"


def training_section(df: pd.DataFrame, dataset: str, channels: int) -> tuple[str, str]:
    queries = int(df["queries"].iloc[0])
    body = (f"{markdown_table(df)}\n\n`python -m benchmarks.parallel_eval --training --queries {queries} "
            f"--dataset {dataset} --channels {channels}`")
    return body, (f"random search, {queries} trainings of NB-201 (C={channels}, one cell per stage) on {dataset} "
                  f"with the default proxy schedule, one torch thread per evaluation; workers=1: in-process; "
                  f"workers=2: two Ray workers of one CPU each")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--training", action="store_true", help="the training search at 1 and 2 workers")
    p.add_argument("--overhead", action="store_true", help="the scheduler's overhead with a sleeping evaluator")
    p.add_argument("--report", action="store_true",
                   help="with --training/--overhead: rewrite the docs sections from the results CSVs, measuring nothing")
    p.add_argument("--queries", type=int, default=40, help="evaluations of the training search")
    p.add_argument("--dataset", default="fashion_mnist", help="training search: digits or fashion_mnist")
    p.add_argument("--channels", type=int, default=8, help="training search: NB-201 channels (one cell per stage)")
    p.add_argument("--workers", type=int, nargs="+", default=[2, 8, 32])
    p.add_argument("--sleep", type=float, default=1.0, help="seconds one simulated evaluation takes")
    p.add_argument("--per-worker", type=int, default=8, help="simulated evaluations per worker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-docs", action="store_true")
    a = p.parse_args()
    if not (a.training or a.overhead):
        p.error("give --training and/or --overhead")
    RESULTS.mkdir(parents=True, exist_ok=True)
    jobs = []  # (docs section and results file name, measure, render)
    if a.overhead:
        jobs.append(("parallel_overhead", lambda: bench_overhead(a.workers, a.sleep, a.per_worker, a.seed),
                     overhead_section))
    if a.training:
        jobs.append(("parallel_training", lambda: bench_training(a.queries, a.seed, a.dataset, a.channels),
                     lambda df: training_section(df, a.dataset, a.channels)))
    for section, measure, render in jobs:
        path = RESULTS / f"{section}.csv"
        if a.report:
            df = pd.read_csv(path)
        else:
            df = measure()
            write_csv_atomic(df, path, index=False)
        body, note = render(df)
        print(body)
        if not a.no_docs:
            write_section("parallel.md", section, body, note)


if __name__ == "__main__":
    main()
