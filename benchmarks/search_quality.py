"""Search quality of every searcher against the truth of NAS-Bench-201.

Scenarios x budgets x seeds, with and without a latency budget at the device's 30% latency
quantile. Prints mean +- std of hv_ratio, front_regret and best feasible accuracy, each
searcher's ratio to random search (and NSGA-II), the queries until the true best feasible
architecture was found (median, censored at the budget), and the searcher's own compute per
query. Writes per-run and aggregated CSVs and a plot under benchmarks/results/; the per-run
CSV after every run, so `--resume` continues a grid that was stopped. With both `mobo` and
`lamoo` in the grid it also checks the LaMOO paper's claim: the queries LaMOO needs to reach
the hypervolume qNEHVI alone (`mobo`) reaches at the largest budget.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.search_quality            # full grid
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.search_quality --seeds 2 --budgets 50
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.search_quality --prefix --resume  # one run per seed, scored at 50/100/200

`--prefix` runs each cell and seed once at the largest budget and scores its first 50 / 100
queries as the 50- / 100-query runs: a searcher here never sees the query budget (the ask/tell
loop stops it), so a shorter run asks exactly those queries (tests/test_search_quality_bench.py).

The tables go to stdout and into docs/search_quality.md, between the markers of a section
named after the run (`search_quality:100q` for every searcher at 100 queries, 10 seeds;
`--section NAME` to choose, `--no-docs` to skip).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

import numpy as np
import pandas as pd

from hwnas.io import save_figure_atomic, write_csv_atomic
from hwnas.search_config import make_search_cfg
from hwnas.search_loop import TimedSearcher

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

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
    name, kw = parse_spec(searcher)
    return make_search_cfg(searcher=name, device=device, dataset=dataset, latency_ms=latency_ms,
                           queries=budget, seed=seed, **kw)


def latency_quantile(device: str, dataset: str, q: float = 0.3) -> float:
    from hwnas.search import build_setup

    s = build_setup(_config("random", dataset, device, 1, 0, None))
    return float(np.quantile(s.problem.source.all_latency(), q))


class CpuTimedSearcher(TimedSearcher):
    """Also counts the searcher's CPU seconds (time.process_time, one thread): unlike the wall
    seconds, not inflated by other work on a shared machine, nor by a paused process."""

    def __init__(self, inner):
        super().__init__(inner)
        self.cpu = 0.0

    def ask(self):
        c = time.process_time()
        try:
            return super().ask()
        finally:
            self.cpu += time.process_time() - c

    def tell(self, evs):
        c = time.process_time()
        try:
            return super().tell(evs)
        finally:
            self.cpu += time.process_time() - c


def one_run(task: tuple) -> list[dict]:
    """One search at the largest of `budgets`, scored at each budget of `budgets` on its
    first `budget` queries (one budget: an ordinary run; several: `--prefix`). The row of the
    largest budget also holds `hv_curve`, the hv_ratio after each query (for the LaMOO claim)."""
    searcher, dataset, device, budgets, seed, latency_ms = task
    import warnings

    from hwnas.search import build_setup, make_searcher
    from hwnas.search_loop import run_search

    budgets = sorted(budgets)
    cfg = _config(searcher, dataset, device, budgets[-1], seed, latency_ms)
    s = build_setup(cfg)
    timed = CpuTimedSearcher(make_searcher(cfg.searcher, s.problem, seed))
    spent: list[tuple[float, float]] = []  # the searcher's (wall, CPU) seconds before each new query was evaluated

    def on_query(q, ev, replayed) -> None:
        spent.append((timed.seconds, timed.cpu))

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evals = run_search(s.problem, s.evaluator, timed, on_query=on_query).history
    wall = time.perf_counter() - t0
    idx_all = s.space.indices([e.arch for e in evals])
    # The true best feasible architecture (by the metric) and when it was first queried.
    feas_all = np.nonzero(s.scorer.feasible)[0]
    star = feas_all[np.argmin(s.scorer.error[feas_all])]
    rows = []
    for budget in budgets:
        idx, ev_b = idx_all[:budget], evals[:budget]
        score = s.scorer.score(idx)
        hit = np.nonzero(idx == star)[0]
        feas = [e for e in ev_b if e.feasible]
        # Compute until the query after the prefix was asked for (the whole run's at its end).
        secs, cpu = spent[len(ev_b)] if len(ev_b) < len(evals) else (timed.seconds, timed.cpu)
        rows.append(dict(searcher=searcher, dataset=dataset, device=device, budget=budget, seed=seed,
                         constrained=latency_ms is not None, latency_ms=latency_ms, queries=len(ev_b),
                         hv_ratio=score.hv_ratio, front_regret=score.front_regret,
                         best_feasible_accuracy=max(e.accuracy for e in feas) if feas else np.nan,
                         queries_to_best=int(hit[0]) + 1 if len(hit) else np.nan,
                         overhead_ms_per_query=1000 * secs / max(len(ev_b), 1),
                         searcher_s=secs, searcher_cpu_s=cpu, wall_s=wall, prefix_of=budgets[-1], hv_curve=""))
    rows[-1]["hv_curve"] = " ".join(f"{h:.5f}" for h in hv_curve(s.scorer, idx_all))
    return rows


def hv_curve(scorer, idx: np.ndarray) -> list[float]:
    """hv_ratio of the first k queries, k = 1..len(idx) (recomputed only when a query is
    feasible: an infeasible one adds nothing)."""
    out, hv = [], 0.0
    for k in range(len(idx)):
        if scorer.feasible[idx[k]]:
            hv = scorer.hypervolume_of(idx[: k + 1]) / scorer.true_hv if scorer.true_hv > 0 else 0.0
        out.append(hv)
    return out


def queries_to_reach(curve: list[float], target: float) -> int | None:
    """First k (1-based) with curve[k-1] >= target, None when never."""
    hit = np.nonzero(np.asarray(curve) >= target - 1e-9)[0]
    return int(hit[0]) + 1 if len(hit) else None


def sample_efficiency(df: pd.DataFrame, fast: str = "lamoo", base: str = "mobo") -> pd.DataFrame:
    """The LaMOO paper's claim: queries `fast` needs to reach the hv_ratio `base` reaches at the
    largest budget, per scenario, budget setting and seed (None: not within that budget)."""
    top = df[df["budget"] == df["prefix_of"]]
    B = int(top["budget"].max()) if len(top) else 0
    top = top[top["budget"] == B]
    out = []
    for key, g in top.groupby(["dataset", "device", "constrained", "seed"], sort=False):
        g = g.set_index("searcher")
        if fast not in g.index or base not in g.index:
            continue
        curve_b = [float(x) for x in g.loc[base, "hv_curve"].split()]
        curve_f = [float(x) for x in g.loc[fast, "hv_curve"].split()]
        target = curve_b[-1]
        out.append(dict(zip(["dataset", "device", "constrained", "seed"], key), budget=B, target=target,
                        base_q=queries_to_reach(curve_b, target), fast_q=queries_to_reach(curve_f, target),
                        fast_final=curve_f[-1]))
    return pd.DataFrame(out)


def efficiency_table(eff: pd.DataFrame, fast: str = "lamoo", base: str = "mobo") -> str:
    """Per scenario: median queries `fast` needs (censored: budget + 1) to reach `base`'s
    hv_ratio at the largest budget, how often it did, and budget / that median."""
    B = int(eff["budget"].iloc[0])
    lines = [f"| scenario | budget | {base} hv_ratio at {B} (mean) | {fast}: median queries to reach it | reached | "
             f"{B} / median |", "|---|---|---|---|---|---|"]
    for (ds, dev, con), g in eff.groupby(["dataset", "device", "constrained"], sort=False):
        q = g["fast_q"].fillna(B + 1).astype(float)
        med = float(np.median(q))
        lines.append(f"| {ds} x {dev} | {'30%' if con else 'none'} | {g['target'].mean():.3f} | {med:.0f} "
                     f"| {int(g['fast_q'].notna().sum())}/{len(g)} | {B / med:.2f} |")
    q = eff["fast_q"].fillna(B + 1).astype(float)
    lines.append(f"| all | | {eff['target'].mean():.3f} | {np.median(q):.0f} | {int(eff['fast_q'].notna().sum())}/"
                 f"{len(eff)} | {B / np.median(q):.2f} |")
    return "\n".join(lines)


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


LABELS = {"random": "random", "regularized_evolution": "reg. evolution", "nsga2": "NSGA-II",
          "nsga3": "NSGA-III", "lanas": "LaNAS", "agnet": "AG-Net", "ganas": "GA-NAS"}


def _label(spec: str) -> str:
    name, _, opts = spec.partition(":")
    return LABELS.get(name, name) + (f" ({opts})" if opts else "")


def _gmean(x) -> float:
    x = np.asarray(x, float)
    return float(np.exp(np.mean(np.log(x)))) if len(x) and np.all(x > 0) else float("nan")


def full_table(agg: pd.DataFrame) -> str:
    cols = ("scenario", "lat", "q", "searcher", "hv_ratio", "front_regret", "best acc", "hv x rnd",
            "regret x rnd", "hv x nsga2", "q->best")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in agg.iterrows():
        lines.append(
            f"| {r.dataset} x {r.device} | {'30%' if r.constrained else '-'} | {r.budget} | {r.searcher} "
            f"| {r.hv_mean:.3f} ± {r.hv_std:.3f} | {r.regret_mean:.2f} ± {r.regret_std:.2f} "
            f"| {r.acc_mean:.2f} ± {r.acc_std:.2f} | {r.get('hv_x_random', np.nan):.2f} "
            f"| {r.get('regret_x_random', np.nan):.2f} | {r.get('hv_x_nsga2', np.nan):.2f} "
            f"| {r.q_to_best_median:.0f} ({r.found_best}/{r.runs}) |")
    return "\n".join(lines)


def summary_table(agg: pd.DataFrame, budget: int) -> str:
    """One row per searcher: mean hv_ratio over the scenarios, geometric means of the
    per-scenario ratios, without and with the budget, and in how many cells it was best."""
    sub = agg[agg["budget"] == budget]
    cells = sub.groupby(["dataset", "device", "constrained"], sort=False)
    winners = [g.loc[g["hv_mean"].idxmax(), "searcher"] for _, g in cells]
    head = ["searcher"]
    for what in ("no budget", "30% budget"):
        head += [f"hv_ratio, {what}", "hv x random", "hv x NSGA-II", "regret x random"]
    head.append("best hv in")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(sub["searcher"]):
        row = [_label(name)]
        for constrained in (False, True):
            c = sub[(sub["searcher"] == name) & (sub["constrained"] == constrained)]
            row += [f"{c['hv_mean'].mean():.3f}"] + [
                f"{_gmean(c[col]):.2f}" if col in c else "-" for col in ("hv_x_random", "hv_x_nsga2", "regret_x_random")]
        row.append(f"{winners.count(name)} of {len(winners)}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def scenario_table(agg: pd.DataFrame, budget: int) -> str:
    """Mean hv_ratio per scenario and budget setting (ratio to random search), best in bold."""
    sub = agg[agg["budget"] == budget]
    names = list(dict.fromkeys(sub["searcher"]))
    lines = ["| scenario | budget | " + " | ".join(_label(n) for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for (ds, dev, constrained), g in sub.groupby(["dataset", "device", "constrained"], sort=False):
        g = g.set_index("searcher")
        best = g["hv_mean"].idxmax()
        cells = []
        for n in names:
            ratio = g.loc[n].get("hv_x_random", np.nan)
            cell = f"{g.loc[n, 'hv_mean']:.3f} ({ratio:.2f})"
            cells.append(f"**{cell}**" if n == best else cell)
        lines.append(f"| {ds} x {dev} | {'30%' if constrained else 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def docs_body(df: pd.DataFrame, agg: pd.DataFrame, seeds: int, jobs: int, wall_s: float,
              prefix: bool = False) -> str:
    how = (" Each cell's runs are one search per seed at the largest budget, scored at each budget on its "
           "first queries (`--prefix`: what a shorter run of a searcher that does not know the budget "
           "queries)." if prefix else "")
    top = df[df["budget"] == df["prefix_of"]] if "prefix_of" in df else df
    # Summed over the runs (a resumed grid ran in several sittings; its last sitting's wall time says little).
    parts = [f"{len(top)} runs ({seeds} seeds per cell), {top['wall_s'].sum():.0f} s of run time summed over "
             f"the runs (this sitting: {wall_s:.0f} s), one thread per run, `--jobs {jobs}`.{how} "
             "hv_ratio: higher is better; front regret: lower is better. The ratios in the first table are "
             "geometric means over the scenarios of the per-scenario ratios of means."]
    for budget in sorted(agg["budget"].unique()):
        parts += [f"**{budget} queries**, mean over the scenarios:", summary_table(agg, budget),
                  f"Per scenario at {budget} queries, mean `hv_ratio` (ratio to random search), best in bold:",
                  scenario_table(agg, budget)]
    if {"lamoo", "mobo"} <= set(df["searcher"]) and "hv_curve" in df:
        eff = sample_efficiency(df)
        if len(eff):
            parts += ["**LaMOO's sample efficiency against qNEHVI alone** (the paper's claim): queries `lamoo` "
                      "needs to reach the hv_ratio `mobo` reaches at the largest budget, same scenario, budget "
                      "setting and seed (a run that never reaches it counts budget + 1):",
                      efficiency_table(eff)]
    g = top.groupby(["searcher", "budget"], sort=False)
    lines = ["| searcher | queries | ms/query (mean) | searcher s per run: mean, max | CPU s per run: mean, max |",
             "|---|---|---|---|---|"]
    for (n, b), r in g.agg(ms=("overhead_ms_per_query", "mean"), s_mean=("searcher_s", "mean"),
                           s_max=("searcher_s", "max"), c_mean=("searcher_cpu_s", "mean"),
                           c_max=("searcher_cpu_s", "max")).iterrows():
        lines.append(f"| {_label(n)} | {b} | {r.ms:.1f} | {r.s_mean:.1f}, {r.s_max:.1f} | {r.c_mean:.1f}, {r.c_max:.1f} |")
    parts += ["Searcher compute (ask + tell, excluding evaluation; wall seconds depend on the machine's load, "
              "CPU seconds much less; the quality figures do not: every run is deterministic):", "\n".join(lines),
              f"<details><summary>Full table ({len(agg)} rows)</summary>\n\n{full_table(agg)}\n\n</details>"]
    return "\n\n".join(parts)


def default_section(searchers: list[str], budgets: list[int], scenarios: list[int], seeds: int,
                    tag: str) -> str:
    """The docs section a run writes: named after what differs from the full grid, so a
    smaller run never overwrites the table of a larger one."""
    from hwnas.searchers import SEARCHERS

    name = "search_quality:" + "-".join(str(b) for b in budgets) + "q"
    if sorted(searchers) != sorted(SEARCHERS.names()):
        name += ":" + ",".join(searchers)
    if sorted(scenarios) != list(range(len(SCENARIOS))):
        name += ":scenarios" + "-".join(str(i) for i in scenarios)
    if seeds != 10:
        name += f":{seeds}seeds"
    return name if tag == "search_quality" else f"{name}:{tag}"


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


def make_tasks(searchers: list[str], scenarios: list[tuple[str, str, float]], budgets: list[int], seeds: int,
               prefix: bool) -> list[tuple]:
    """Seed-major (every cell's seed 0 first), so a grid stopped early holds whole seeds.

    `scenarios`: (dataset, device, 30%-quantile latency). With `prefix`, one run at the
    largest budget per cell and seed, scored at each budget on its first queries."""
    groups = [tuple(sorted(budgets))] if prefix else [(b,) for b in sorted(budgets)]
    return [(name, ds, dev, g, seed, lat)
            for seed in range(seeds) for ds, dev, q30 in scenarios for lat in (None, q30)
            for g in groups for name in searchers]


def task_key(task: tuple) -> tuple:
    name, ds, dev, budgets, seed, lat = task
    return name, ds, dev, max(budgets), seed, lat is not None


def row_key(row) -> tuple:
    return row["searcher"], row["dataset"], row["device"], int(row["prefix_of"]), int(row["seed"]), bool(row["constrained"])


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
    p.add_argument("--prefix", action="store_true",
                   help="one run per cell and seed at the largest budget, scored at each budget on its first "
                        "queries: the same figures as separate runs for a searcher that does not know the budget "
                        "(every searcher here; the ask/tell loop stops it), at the cost of the largest run only")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already in benchmarks/results/<tag>_runs.csv (written after every run) "
                        "and run only the missing ones")
    p.add_argument("--tag", default="search_quality", help="file names under benchmarks/results/")
    p.add_argument("--section", default=None,
                   help="docs/search_quality.md section to write (default: named after budgets, searchers, ...)")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/search_quality.md as it is")
    a = p.parse_args()
    for spec in a.searchers:
        name, kw = parse_spec(spec)
        SEARCHERS.get(name).config(**kw)  # fail now on an unknown searcher or option
    scen = [(*SCENARIOS[si], latency_quantile(SCENARIOS[si][1], SCENARIOS[si][0])) for si in a.scenarios]
    tasks = make_tasks(a.searchers, scen, a.budgets, a.seeds, a.prefix)
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs_csv = RESULTS / f"{a.tag}_runs.csv"
    rows: list[dict] = []
    if a.resume and runs_csv.is_file():
        wanted = {task_key(t) for t in tasks}
        rows = [r for r in pd.read_csv(runs_csv, keep_default_na=False, na_values=[""]).to_dict("records")
                if row_key(r) in wanted]
        done = {row_key(r) for r in rows}
        tasks = [t for t in tasks if task_key(t) not in done]
        print(f"resuming: {len(done)} runs kept from {runs_csv}, {len(tasks)} to go", file=sys.stderr)
    from tqdm import tqdm

    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        for out in tqdm(pool.imap_unordered(one_run, tasks, chunksize=1), total=len(tasks), desc="runs",
                        file=sys.stderr):
            rows += out
            write_csv_atomic(pd.DataFrame(rows), runs_csv, index=False)  # a stopped grid keeps what it ran
    df = pd.DataFrame(rows)
    df["hv_curve"] = df["hv_curve"].fillna("").astype(str)
    # Table order: scenario, budget setting, budget, searcher as given, seed.
    spec_i = {spec: i for i, spec in enumerate(a.searchers)}
    scen_i = {(ds, dev): i for i, (ds, dev, _) in enumerate(scen)}
    df["_o"] = [(scen_i[(d, v)], c, b, spec_i[n], sd) for d, v, c, b, n, sd in
                zip(df["dataset"], df["device"], df["constrained"], df["budget"], df["searcher"], df["seed"])]
    df = df.sort_values("_o").drop(columns="_o").reset_index(drop=True)
    write_csv_atomic(df, runs_csv, index=False)
    agg = aggregate(df)
    write_csv_atomic(agg, RESULTS / f"{a.tag}.csv", index=False)
    plot(agg, RESULTS / f"{a.tag}.png")
    wall = time.perf_counter() - t0
    seeds = int(df.groupby(["searcher", "dataset", "device", "constrained", "budget"])["seed"].nunique().min())
    body = docs_body(df, agg, seeds, a.jobs, wall, prefix=a.prefix)
    print(body)
    print(f"\nwrote {RESULTS / (a.tag + '.csv')}, {runs_csv}, {RESULTS / (a.tag + '.png')}")
    if not a.no_docs:
        name = a.section or default_section(a.searchers, a.budgets, a.scenarios, a.seeds, a.tag)
        print(f"wrote {write_section('search_quality.md', name, body)} (section {name})")


if __name__ == "__main__":
    main()
