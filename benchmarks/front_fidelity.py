"""How a latency table does on the networks a search returns, not only on random ones.

A profile validates its table on architectures drawn uniformly from the space. A search under a
latency budget returns something else: fronts full of small networks of 1x1 convolutions and
skips. This runs searches (searchers x seeds) on a profiled table under a latency budget,
gathers the union of their Pareto fronts, times those networks end to end twice, minutes apart,
with the table's own reference clock (the table's units; profiler.time_archs), and scores the
table's predictions against the mean of the two timings: Kendall tau, MAPE, mean signed error,
within +-5% / +-10%, by latency third, beside the table's own validation; then the worst networks.

    python -m benchmarks.front_fidelity                      # the table hwnas-profile wrote here
    python -m benchmarks.front_fidelity --table latency_tables/<device>.json --seeds 0 1 2 3

Runs, timings and a plot go to benchmarks/results/front_fidelity/<table>-<hash of its file>/
(kept, so a re-run only reports); the table to stdout and into
docs/latency.md (section `front_fidelity:<cpu>`; --no-docs to skip). Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.calibration_features import layout_features
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from calibration_features import layout_features
    from docs_section import write_section

REPO = Path(__file__).resolve().parents[1]
SEARCHERS = ("lamoo", "nsga2", "mobo", "random")


def front_archs(pareto_csvs) -> list[str]:
    """The architectures of these pareto.csv files, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for path in pareto_csvs:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                seen.setdefault(row["arch"], None)
    return list(seen)


def run_searches(table_path: Path, out: Path, searchers, seeds, quantile: float, queries: int) -> list[Path]:
    """One `hwnas-search` per searcher and seed on the table (a run already there is kept)."""
    done = []
    for name in searchers:
        for seed in seeds:
            run = out / "runs" / f"{name}-seed{seed}"
            if not (run / "pareto.csv").is_file():
                cmd = [sys.executable, "-m", "hwnas.apps.search", "device=profiled", f"device.path={table_path}",
                       f"device.name={table_path.stem}", f"searcher={name}", f"seed={seed}",
                       f"constraints.latency_quantile={quantile}", f"budget.queries={queries}",
                       "output.progress=false", f"hydra.run.dir={run}"]
                subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
            done.append(run / "pareto.csv")
    return done


def time_with_table_clock(table_path: Path, space, archs, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) end-to-end medians (ms) of `archs`, timed as the profile timed its
    validation: same runner settings and repeats, interleaved in rounds, scaled by the table's
    reference clock at its stored levels, the second pass after the first."""
    from hwnas.latency.table import LatencyTable
    from hwnas.profiling.profiler import Clock, time_archs
    from hwnas.profiling.runners import RUNNERS, TimingSettings

    with tempfile.TemporaryDirectory(prefix="hwnas-front-") as tmp:
        work = Path(tmp)
        shutil.copy(table_path, work / "table.json")
        table = LatencyTable.load(work / "table.json")
        fp, st = table.fingerprint, table.settings
        settings = TimingSettings.from_fingerprint(fp)
        settings = replace(settings, warmup=int(st.get("warmup", settings.warmup)),
                           repeats=int(st.get("e2e_repeats", settings.repeats)))
        runner = RUNNERS.get(fp["runner"])(settings)
        seed = int(st.get("seed", 0))
        dataset = fp.get("dataset", "cifar10")
        clock = Clock(space, dataset, runner, table, work, seed) if st.get("clock", True) else None
        todo = [space.parse(a) for a in archs]
        table.e2e = {}  # time every front architecture, also those the profile timed
        kept = dict.fromkeys(archs)
        time_archs(space, dataset, runner, table, todo, work, seed, progress, clock, kept=kept)
        time_archs(space, dataset, runner, table, todo, work, seed, progress, clock, recheck=True, kept=kept)
        first = np.array([table.e2e[a]["median_ms"] for a in archs])
        second = np.array([table.e2e[a]["recheck_median_ms"] for a in archs])
    return first, second


def scores(pred, truth, first=None, second=None) -> dict:
    """fidelity() plus the mean signed error and, given both timings, how far they are apart."""
    from hwnas.latency.fidelity import fidelity

    out = fidelity(pred, truth) | {"bias_pct": float(100 * np.mean((pred - truth) / truth))}
    if first is not None:
        from scipy.stats import kendalltau

        apart = np.abs(first - second) / np.minimum(first, second)
        out |= {"retime_apart_pct": float(100 * np.median(apart)), "retime_within_10pct": float(np.mean(apart <= 0.1)),
                "retime_kendall_tau": float(kendalltau(first, second).statistic)}
    return out


def row(name: str, s: dict) -> str:
    noise = (f"{s['retime_apart_pct']:.1f}% / {100 * s['retime_within_10pct']:.0f}% / {s['retime_kendall_tau']:.3f}"
             if "retime_apart_pct" in s else "-")
    return (f"| {name} | {s['n']} | {s['kendall_tau']:.3f} | {s['mape_pct']:.1f}% | {s['bias_pct']:+.1f}% | "
            f"{100 * s['within_5pct']:.0f}% | {100 * s['within_10pct']:.0f}% | {noise} |")


def report(table, archs, pred, first, second, kernels, n_runs: int, searchers, seeds, quantile, queries) -> str:
    truth = (first + second) / 2
    val = table.validation or {}
    head = ("| architectures | n | Kendall tau | MAPE | mean error | within ±5% | within ±10% | "
            "the two timings: apart (median) / within 10% / Kendall tau |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    if val.get("predicted_ms"):
        vp, vm = np.array(val["predicted_ms"]), np.array(val["measured_ms"])
        noise = table.noise or {}
        own = scores(vp, vm) | ({"retime_apart_pct": 100 * noise["e2e_recheck_rel_diff_median"],
                                 "retime_within_10pct": noise["e2e_recheck_within_10pct"],
                                 "retime_kendall_tau": noise["e2e_recheck_kendall_tau"]}
                                if "e2e_recheck_kendall_tau" in noise else {})
        lines.append(row("the table's own validation (random architectures)", own))
    lines.append(row(f"**fronts of {n_runs} searches**", scores(pred, truth, first, second)))
    cuts = np.quantile(truth, [1 / 3, 2 / 3])
    for label, mask in (("fastest third of them", truth <= cuts[0]),
                        ("middle third", (truth > cuts[0]) & (truth <= cuts[1])),
                        ("slowest third", truth > cuts[1])):
        if mask.sum() >= 3:
            lo, hi = truth[mask].min(), truth[mask].max()
            lines.append(row(f"{label} ({lo:.2f}-{hi:.2f} ms)", scores(pred[mask], truth[mask], first[mask], second[mask])))
    rel = (pred - truth) / truth
    worst = np.argsort(-np.abs(rel))[:5]
    lines += ["", "Worst predicted (measured = mean of the two timings; the runtime's layout conversions, unfused "
              "ReLUs, unfused Adds):", "", "| architecture | measured | predicted | error | kernels |", "|---|---|---|---|---|"]
    for i in worst:
        cell = archs[i].replace("|", "\\|")  # a cell string's pipes would split the markdown row
        lines.append(f"| `{cell}` | {truth[i]:.3f} ms | {pred[i]:.3f} ms | {100 * rel[i]:+.0f}% | "
                     f"{', '.join(str(int(k)) for k in kernels[i])} |")
    lines += ["", f"Searches: {', '.join(searchers)} x seeds {', '.join(map(str, seeds))}, {queries} queries, "
              f"budget at the table's {quantile:.0%} latency quantile; every front architecture timed twice with "
              f"the table's reference clock."]
    return "\n".join(lines)


def calibration_sizes(model, table, space, archs, truth, ks, draws: int = 300, seed: int = 0) -> list[dict]:
    """How many calibration architectures the fronts need: the profiler's layout calibration
    refitted on k random architectures of those the table timed end to end (its calibration and
    validation ones), `draws` times per k, each fit scored on the fronts. Per k: mean MAPE, mean
    signed error, mean and 10th percentile of the share within +-10%, mean Kendall tau."""
    from scipy.stats import kendalltau

    from hwnas.latency.model import apply_calibration, fit

    _, S, K, y = layout_features(table, space, model.sum_rule, model.dataset)  # priced as the fronts are
    front = [space.parse(a) for a in archs]
    fS, fK = model.table_sum(front), model.runtime_kernels(front)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        if k > len(y):
            continue
        got = []
        for _ in range(draws if k < len(y) else 1):
            pick = rng.choice(len(y), size=k, replace=False)
            pred = apply_calibration(fit("layout", S[pick], None, y[pick], K[pick]), fS, kernels=fK)
            rel = (pred - truth) / truth
            got.append((100 * np.abs(rel).mean(), 100 * rel.mean(), np.mean(np.abs(rel) <= 0.1),
                        kendalltau(pred, truth).statistic))
        g = np.array(got)
        rows.append({"k": int(k), "draws": len(g), "mape_pct": float(g[:, 0].mean()), "bias_pct": float(g[:, 1].mean()),
                     "within_10pct": float(g[:, 2].mean()), "within_10pct_p10": float(np.percentile(g[:, 2], 10)),
                     "kendall_tau": float(g[:, 3].mean())})
    return rows


def sizes_table(rows: list[dict], n_timed: int) -> str:
    lines = [f"Calibration size: the layout calibration refitted on k of the table's {n_timed} architectures timed end "
             "to end (random draws), scored on the same fronts:", "",
             "| k | draws | MAPE | mean error | within ±10% (mean) | within ±10% (10th percentile of draws) | Kendall tau |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['k']} | {r['draws']} | {r['mape_pct']:.2f}% | {r['bias_pct']:+.2f}% | {100 * r['within_10pct']:.1f}% | "
              f"{100 * r['within_10pct_p10']:.0f}% | {r['kendall_tau']:.3f} |" for r in rows]
    return "\n".join(lines)


def plot(path: Path, table, pred, truth) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    val = table.validation or {}
    vm, vp = np.asarray(val.get("measured_ms") or []), np.asarray(val.get("predicted_ms") or [])
    lim = [0, 1.05 * max(np.max(truth), np.max(pred), *vm, *vp)]
    ax.fill_between(lim, [0.9 * v for v in lim], [1.1 * v for v in lim], color="0.9", label="±10%", zorder=0)
    ax.plot(lim, lim, "k-", lw=0.8, zorder=1)
    if vm.size:
        ax.scatter(vm, vp, s=14, alpha=0.7, label="the table's validation (random)", zorder=2)
    ax.scatter(truth, pred, s=14, alpha=0.7, label="networks on search fronts", zorder=3)
    ax.set(xlim=lim, ylim=lim, xlabel="measured (ms)", ylabel="predicted by the table (ms)",
           title=table.device)
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from hwnas.config import this_machine_table
    from hwnas.errors import HwnasError
    from hwnas.io import write_text_atomic
    from hwnas.latency.model import LatencyModel
    from hwnas.latency.table import LatencyTable, table_path
    from hwnas.machine import cpu_slug
    from hwnas.spaces import NB201Space

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", help="a table hwnas-profile wrote (default: this machine's, as device=this_machine)")
    ap.add_argument("--searchers", nargs="+", default=list(SEARCHERS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--quantile", type=float, default=0.3, help="the search's latency budget as a quantile (0.3)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "front_fidelity"))
    ap.add_argument("--retime", action="store_true", help="time the fronts again even if timings.json has them")
    ap.add_argument("--sizes", nargs="*", type=int, default=[10, 20, 40, 60, 90],
                    help="calibration sizes k to refit on the table's timed architectures and score on the fronts")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)

    path = Path(args.table).resolve() if args.table else table_path(this_machine_table())
    try:
        table = LatencyTable.load(path)
    except HwnasError as exc:  # no table, or not one: one line, not a traceback
        print(f"front_fidelity: {exc}", file=sys.stderr)
        return 2
    space = NB201Space(**(table.fingerprint.get("space_params") or {}))
    # Runs and timings are kept per table content: a table profiled again gets new searches.
    out = Path(args.out) / f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"
    runs = run_searches(path, out, args.searchers, args.seeds, args.quantile, args.queries)
    archs = front_archs(runs)
    print(f"{len(archs)} architectures on the fronts of {len(runs)} searches")
    stored = out / "timings.json"
    old = json.loads(stored.read_text()) if stored.is_file() else {}
    if old.get("archs") == archs and not args.retime:  # the same fronts, already timed: report again
        first, second = np.array(old["first_ms"]), np.array(old["second_ms"])
    else:
        first, second = time_with_table_clock(path, space, archs)
    model = LatencyModel(table, space, table.fingerprint.get("dataset", "cifar10"))
    parsed = [space.parse(a) for a in archs]
    pred = model.predict(parsed)
    kernels = model.runtime_kernels(parsed)
    timings = {"archs": archs, "first_ms": first.tolist(), "second_ms": second.tolist(), "predicted_ms": pred.tolist()}
    write_text_atomic(stored, json.dumps(timings))
    plot(out / "front_fidelity.png", table, pred, (first + second) / 2)
    text = report(table, archs, pred, first, second, kernels, len(runs), args.searchers, args.seeds, args.quantile,
                  args.queries)
    if args.sizes:
        truth = (first + second) / 2
        text += "\n\n" + sizes_table(calibration_sizes(model, table, space, archs, truth, args.sizes), len(table.e2e))
    print(text)
    print(f"plot: {out / 'front_fidelity.png'}")
    if not args.no_docs:
        note = f"table {path.name}"
        print(f"wrote {write_section('latency.md', f'front_fidelity:{cpu_slug()}', text, note)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
