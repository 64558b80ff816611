"""DASH, measured (docs/dash.md): the Fourier mixture's speed, DASH's networks against the fixed
backbone, and the lambda sweep's front against random networks.

speed     time per search step (forward + backward + the optimiser steps) of the Fourier mixture
          against the naive mixture of all candidates, at the paper's candidate counts: one mixed
          layer, and the whole supernet of space=dash (16 channels) at the tasks' input sizes.
accuracy  per task and seed: DASH's network (searcher=dash, lambda=0) and the fixed backbone (kernel
          3, dilation 1 everywhere), both retrained with the same schedule (evaluator=train);
          validation and test accuracy.
front     on one task: the lambda sweep's networks against as many random (kernel, dilation)
          networks trained the same way; both fronts (test error, table latency) in one plot and
          their hypervolumes in one number.

Every row goes to benchmarks/results/dash_<section>.csv as soon as it is measured (atomically); a
re-run skips the rows already there, so a killed run goes on where it stopped. The latency is
this machine's quick-profiled table (device=this_machine, profiled on first use).

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.dash                    # the CPU-sized default
    python -m benchmarks.dash --sections speed --no-docs
    python -m benchmarks.dash --full   # the schedule docs/dash.md calls full size (hours on a CPU)
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

import numpy as np
import pandas as pd

from hwnas.io import write_csv_atomic

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import markdown_table, write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import markdown_table, write_section

RESULTS = REPO / "benchmarks" / "results"
PAGE = "dash.md"
TASKS = ("fashion_mnist", "osuleaf", "plaid", "fashion_mnist_seq")

# The paper's candidate sets (the authors' src/task_configs.py): 2-D tasks, 1-D tasks, and the
# 784-long sequence task (MNIST read as a sequence).
SPEED_CASES = [
    # name, dims, kernels, dilations, input (C, H, W) of the supernet
    ("2-D 28x28 (fashion_mnist)", 2, (3, 5, 7, 9), (1, 3, 7, 15), (1, 28, 28)),
    ("1-D L=427 (osuleaf)", 1, (3, 7, 11, 15, 19), (1, 3, 7, 15), (1, 1, 427)),
    ("1-D L=784 (fashion_mnist_seq)", 1, (3, 5, 7, 9), (1, 3, 7, 15, 31, 63, 127), (1, 1, 784)),
]
SCHEDULES = {
    # CPU-sized: the whole benchmark in about 40 minutes on 2 shared cores.
    # Epochs are set per task so that every task sees about the same number of examples
    # (search_samples, train_samples): 3 epochs of OSULeaf's 160 training series are 15 steps.
    "quick": dict(seeds=3, search_samples=1600, search_subset=400, train_samples=6000, train_subset=1000, width=8,
                  lambdas=(0.0, 0.25, 1.0, 4.0, 16.0), front_task="osuleaf", speed_batch=32, speed_reps=5),
    # DASH-like: more data and epochs (hours on a CPU; minutes per task on a GPU).
    "full": dict(seeds=3, search_samples=200_000, search_subset=0, train_samples=1_000_000, train_subset=0, width=16,
                 lambdas=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0), front_task="osuleaf", speed_batch=64, speed_reps=10),
}


def _append(path: Path, rows: list[dict], row: dict) -> None:
    rows.append(row)
    write_csv_atomic(pd.DataFrame(rows), path, index=False)  # every row at once: a kill loses at most the one running


def _done(path: Path) -> list[dict]:
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


# --- speed -------------------------------------------------------------------------------------------
def _search_step(mixture: str, level: str, dims: int, cands, shape, batch: int):
    """A closure running one search step (forward, backward, both optimisers) of a mixed layer
    (16 -> 16 channels at the input's size) or of the whole space=dash supernet (width 16)."""
    import torch

    from hwnas.searchers.dash_mixed_conv import mixed_conv
    from hwnas.searchers.dash_supernet import build_supernet
    from hwnas.spaces.dash import DashSpace

    torch.manual_seed(0)
    if level == "layer":
        m = mixed_conv(mixture, dims, 16, 16, cands)
        x, y, arch = torch.randn(batch, 16, *shape[1 + (dims == 1):]), None, [m.alpha]
    else:
        ks, ds = sorted({k for k, _ in cands}), sorted({d for _, d in cands})
        m, layers = build_supernet(DashSpace(dims=dims, width=16, depth=1, kernels=ks, dilations=ds), shape, 10, mixture)
        x, y, arch = torch.randn(batch, *shape), torch.randint(0, 10, (batch,)), [layer.alpha for layer in layers]
    ids = {id(p) for p in arch}
    w_opt = torch.optim.AdamW([p for p in m.parameters() if id(p) not in ids], lr=1e-3)
    a_opt = torch.optim.Adam(arch, lr=1e-2)

    def step():
        w_opt.zero_grad()
        a_opt.zero_grad()
        out = m(x)
        loss = out.square().mean() if y is None else torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        w_opt.step()
        a_opt.step()

    return step


def speed(sched: dict, log=print) -> pd.DataFrame:
    """Both mixtures timed in alternation (a, b, a, b, ...), medians: a busy machine slows both alike."""
    import torch

    path = RESULTS / "dash_speed.csv"
    rows = _done(path)
    have = {(r["case"], r["level"]) for r in rows}
    b, reps = sched["speed_batch"], sched["speed_reps"]
    for name, dims, ks, ds, shape in SPEED_CASES:
        cands = [(k, d) for k in ks for d in ds]
        for level in ("layer", "supernet"):
            if (name, level) in have:
                continue
            steps = {m: _search_step(m, level, dims, cands, shape, b) for m in ("fourier", "naive")}
            for step in steps.values():  # warm-up: allocations, FFT twiddles
                step()
            times = {m: [] for m in steps}
            for _ in range(reps):
                for m, step in steps.items():
                    t0 = time.perf_counter()
                    step()
                    times[m].append(time.perf_counter() - t0)
            for m in steps:
                sec = float(np.median(times[m]))
                _append(path, rows, {"case": name, "level": level, "mixture": m, "candidates": len(cands), "batch": b,
                                     "ms_per_step": round(1e3 * sec, 2), "reps": reps,
                                     "threads": torch.get_num_threads()})
                log(f"speed {name} {level} {m}: {1e3 * sec:.1f} ms/step")
    return pd.DataFrame(rows)


def speed_table(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (case, level), g in df.groupby(["case", "level"], sort=False):
        f = float(g[g.mixture == "fourier"].ms_per_step.iloc[0])
        n = float(g[g.mixture == "naive"].ms_per_step.iloc[0])
        out.append({"case": case, "level": level, "candidates": int(g.candidates.iloc[0]),
                    "Fourier ms/step": f"{f:.1f}", "naive ms/step": f"{n:.1f}", "speed-up": f"{n / f:.2f}x"})
    return pd.DataFrame(out)


# --- accuracy and front: networks trained like evaluator=train ----------------------------------------
def setup(task: str, seed: int, sched: dict, lambdas=(0.0,)):
    """(space, problem, evaluator, searcher config) of space=dash on `task` with this machine's table."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from hwnas.apps.search import GROUPS  # noqa: F401  (stores the schemas, registers the resolvers)
    from hwnas.search import build_setup

    overrides = [f"dataset={task}", "space=dash", f"space.width={sched['width']}", "searcher=dash", "evaluator=train",
                 "device=this_machine", "constraints.latency_ms=inf", f"seed={seed}",
                 f"evaluator.train_subset={sched['train_subset'] or 'null'}",
                 f"searcher.train_subset={sched['search_subset']}",
                 f"searcher.lambdas=[{','.join(str(v) for v in lambdas)}]", "budget.queries=100"]
    with initialize_config_module("hwnas.conf", version_base=None):
        cfg = OmegaConf.to_object(compose("search", overrides=overrides))
    s = build_setup(cfg)
    # Epochs from the examples to see (SCHEDULES): known only once the data is loaded.
    n = len(s.evaluator.x_train)
    n_search = min(n, sched["search_subset"] or n)
    s.evaluator.schedule = replace(s.evaluator.schedule, epochs=max(1, round(sched["train_samples"] / n)))
    cfg.searcher.epochs = max(1, round(sched["search_samples"] / n_search))
    return s, cfg


def _measure(s, arch) -> dict:
    t0 = time.perf_counter()
    val, _ = s.evaluator.evaluate(arch)
    return {"arch": str(arch), "val_accuracy": val, "test_accuracy": s.evaluator.test_accuracy(arch),
            "latency_ms": float(s.problem.latency([arch])[0]), "train_s": round(time.perf_counter() - t0, 2)}


def accuracy(sched: dict, tasks, log=print) -> pd.DataFrame:
    from hwnas.searchers.dash import DashSearcher

    path = RESULTS / "dash_accuracy.csv"
    rows = _done(path)
    have = {(r["task"], int(r["seed"]), r["method"]) for r in rows}
    for seed in range(sched["seeds"]):  # seeds outermost: a cut-short run still covers every task
        for task in tasks:
            if {(task, seed, "dash"), (task, seed, "fixed")} <= have:
                continue
            s, cfg = setup(task, seed, sched)
            if (task, seed, "fixed") not in have:
                fixed = s.space.from_choices([(3, 1)] * s.space.n_layers())
                _append(path, rows, {"task": task, "seed": seed, "method": "fixed", "search_s": 0.0, **_measure(s, fixed)})
                log(f"accuracy {task} seed {seed} fixed: {rows[-1]['test_accuracy']:.2f}")
            if (task, seed, "dash") not in have:
                searcher = DashSearcher(s.problem, cfg.searcher, seed)
                searcher.bind_run(s.evaluator)
                t0 = time.perf_counter()
                arch = searcher.ask()[0]
                search_s = round(time.perf_counter() - t0, 2)
                _append(path, rows, {"task": task, "seed": seed, "method": "dash", "search_s": search_s,
                                     **_measure(s, arch)})
                log(f"accuracy {task} seed {seed} dash ({arch}): {rows[-1]['test_accuracy']:.2f}, search {search_s} s")
    return pd.DataFrame(rows)


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for task, g in df.groupby("task", sort=False):
        row = {"task": task, "seeds": int(g.seed.nunique())}
        for m, label in (("fixed", "fixed k3d1"), ("dash", "DASH")):
            t = g[g.method == m]
            row[f"{label} test acc"] = f"{t.test_accuracy.mean():.2f} ± {t.test_accuracy.std(ddof=0):.2f}"
            row[f"{label} latency ms"] = f"{t.latency_ms.mean():.3g}"
        d = g[g.method == "dash"].set_index("seed").test_accuracy - g[g.method == "fixed"].set_index("seed").test_accuracy
        row["DASH - fixed"] = f"{d.mean():+.2f}"
        row["DASH search s"] = f"{g[g.method == 'dash'].search_s.mean():.0f}"
        out.append(row)
    return pd.DataFrame(out)


def front(sched: dict, log=print) -> pd.DataFrame:
    from hwnas.searchers.dash import DashSearcher

    task, lambdas = sched["front_task"], sched["lambdas"]
    path = RESULTS / "dash_front.csv"
    rows = _done(path)
    have = {(r["method"], str(r["key"])) for r in rows}
    s, cfg = setup(task, 0, sched, lambdas)
    searcher = DashSearcher(s.problem, cfg.searcher, 0)
    searcher.bind_run(s.evaluator)
    for lam in lambdas:
        arch = searcher.ask()[0]  # one supernet search per lambda, in order (the first ones again on a re-run)
        if ("dash", str(lam)) not in have:
            _append(path, rows, {"task": task, "method": "dash", "key": str(lam), **_measure(s, arch)})
            log(f"front dash lambda={lam}: {rows[-1]['test_accuracy']:.2f} % at {rows[-1]['latency_ms']:.3g} ms ({arch})")
    rng = np.random.default_rng(0)
    for i in range(len(lambdas)):
        arch = s.space.sample(rng)
        if ("random", str(i)) not in have:
            _append(path, rows, {"task": task, "method": "random", "key": str(i), **_measure(s, arch)})
            log(f"front random {i}: {rows[-1]['test_accuracy']:.2f} % at {rows[-1]['latency_ms']:.3g} ms")
    return pd.DataFrame(rows)


def front_scores(df: pd.DataFrame, plot: Path | None = None) -> pd.DataFrame:
    """Hypervolume of each method's front in (test error %, latency ms), one shared reference point:
    100 % error and 1.1 x the slowest network of either method."""
    from hwnas.pareto import hypervolume, non_dominated

    ref = np.array([100.0, 1.1 * df.latency_ms.max()])
    out, fronts = [], {}
    for m in ("dash", "random"):
        g = df[df.method == m]
        F = np.column_stack([100.0 - g.test_accuracy.to_numpy(float), g.latency_ms.to_numpy(float)])
        fronts[m] = (F, F[non_dominated(F)])
        out.append({"method": "DASH lambda sweep" if m == "dash" else "random (kernel, dilation)",
                    "networks": len(g), "distinct": int(g.arch.nunique()), "front size": int(len(fronts[m][1])),
                    "hypervolume": f"{hypervolume(F, ref):.1f}"})
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for m, color in (("dash", "tab:red"), ("random", "tab:gray")):
            F, nd = fronts[m]
            ax.scatter(F[:, 1], 100 - F[:, 0], color=color, alpha=0.5, label=f"{m}: every network")
            nd = nd[np.argsort(nd[:, 1])]
            ax.step(nd[:, 1], 100 - nd[:, 0], where="post", color=color, label=f"{m}: front")
        ax.set_xlabel("latency (ms, this machine's table)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"DASH lambda sweep vs random networks, {df.task.iloc[0]}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        from hwnas.io import atomic_path

        with atomic_path(plot) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=["speed", "accuracy", "front"],
                    choices=["speed", "accuracy", "front"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--full", action="store_true", help="the full-size schedule (hours on a CPU)")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--tables-only", action="store_true",
                    help="measure nothing: write docs/dash.md from the rows already in benchmarks/results/")
    args = ap.parse_args()
    sched = SCHEDULES["full" if args.full else "quick"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    size = "full" if args.full else "quick"
    note = (f"schedule {size}: {sched['seeds']} seeds; supernet: {sched['search_samples']} examples seen, from the "
            f"first {sched['search_subset'] or 'all'} training examples; retraining: {sched['train_samples']} examples "
            f"seen, from {sched['train_subset'] or 'all'}; space.width={sched['width']}")
    for section in args.sections:
        t0 = time.perf_counter()
        saved = _done(RESULTS / f"dash_{section}.csv")
        if section == "speed":
            df = pd.DataFrame(saved) if args.tables_only else speed(sched)
            body = markdown_table(speed_table(df))
        elif section == "accuracy":
            df = pd.DataFrame(saved) if args.tables_only else accuracy(sched, args.tasks)
            body = markdown_table(accuracy_table(df))
        else:
            df = pd.DataFrame(saved) if args.tables_only else front(sched)
            png = REPO / "docs" / "dash_front.png"
            body = markdown_table(front_scores(df, png)) + "\n\n![DASH front vs random](dash_front.png)"
        print(f"{section}: {time.perf_counter() - t0:.0f} s")
        if not args.no_docs:
            what = (f"batch {sched['speed_batch']}, median of {sched['speed_reps']} steps of each mixture in "
                    f"alternation, 1 torch thread, supernets of width 16" if section == "speed" else note)
            print(f"wrote {write_section(PAGE, f'dash:{section}', body, note=what)}")


if __name__ == "__main__":
    main()
