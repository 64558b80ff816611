"""How far does an additive per-op model go on real devices? Fit it on a few, predict the rest.

For every public device (the 19 columns of nb201_latency_ms.csv and the Raspberry Pi 5 under
3 frameworks), sample sizes x seeds x feature sets: draw n architectures (seeded), fit per-op
costs by NNLS (hwnas/latency/additive_fit.py) and score the prediction of every other
architecture (hwnas/latency/fidelity.py): Kendall tau, Spearman rho, MAPE, share within
+-5% / +-10%. Scores are on the whole held-out rest ("all") and on its connected cells
("connected": cells with an input-output path, the only ones a search evaluates), and 5-fold
cross-validation on the sample alone ("cv": what a user of device=fitted can see). Prints the
tables (mean over seeds), writes per-fit and aggregated CSVs and a plot to benchmarks/results/.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.public_device_fit
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.public_device_fit --sizes 100 --seeds 2 --no-docs

With the default grid it also writes its two summary tables into docs/additive_fit.md
(sections public_device_fit:features and public_device_fit:devices; `--no-docs` to skip).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

import numpy as np
import pandas as pd

from hwnas.data.nb201 import PI5_FRAMEWORKS, latency_devices, load_latency, load_pi5
from hwnas.data.paths import resolve_data_dir
from hwnas.io import save_figure_atomic, write_csv_atomic
from hwnas.latency.additive_fit import (
    DEFAULT_FEATURES,
    FEATURE_SETS,
    cross_validate,
    fit_additive,
    live_edges,
    sample_indices,
)
from hwnas.latency.fidelity import fidelity
from hwnas.machine import cpu_model
from hwnas.spaces import NB201Space

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

RESULTS = REPO / "benchmarks" / "results"
FIELDS = ("kendall_tau", "spearman_rho", "mape_pct", "within_5pct", "within_10pct")


def device_latencies(data_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Device name -> (latency (ms) of every architecture in index order, rows to use).

    HW-NAS-Bench-360 measured only one representative of each group of "isomorphic" cells and
    copied its latency to the others (`rep_index`), although their op counts differ:
    `pi5_<fw>_own` uses only the rows measured on their own architecture.
    """
    lat = load_latency(data_dir)
    out = {d: (lat[d].to_numpy(float), np.ones(len(lat), bool)) for d in latency_devices(data_dir)}
    for fw in PI5_FRAMEWORKS:
        df = load_pi5(data_dir, fw, "cifar100")
        y = df["lat_ms_median"].to_numpy(float)
        out[f"pi5_{fw}"] = (y, np.ones(len(y), bool))
        out[f"pi5_{fw}_own"] = (y, (df["rep_index"] == df["index"]).to_numpy())
    return out


def scores(f: dict) -> dict:
    # fidelity's own `n` (architectures scored) must not overwrite the sample size `n`.
    return {"n_scored": f["n"], **{k: f[k] for k in FIELDS}}


def run(data_dir, sizes, seeds, feature_sets) -> pd.DataFrame:
    space = NB201Space(data_dir=data_dir)
    ops = np.array([a.ops for a in space.enumerate()], dtype=np.int64)
    connected = live_edges(ops)[1]
    rows = []
    for device, (y, valid) in device_latencies(data_dir).items():
        rows_ok = np.nonzero(valid)[0]
        for n in sizes:
            for seed in range(seeds):
                train = rows_ok[sample_indices(len(rows_ok), n, seed)]
                rest = valid.copy()
                rest[train] = False
                for kind in feature_sets:
                    model = fit_additive(ops[train], y[train], kind)
                    pred = model.predict(ops)
                    for subset, mask in (("all", rest), ("connected", rest & connected)):
                        rows.append({"device": device, "n": n, "seed": seed, "features": kind, "subset": subset,
                                     **scores(fidelity(pred[mask], y[mask]))})
                    # What a user sees with only the sample: 5-fold CV on it (device=fitted reports it).
                    rows.append({"device": device, "n": n, "seed": seed, "features": kind, "subset": "cv",
                                 **scores(cross_validate(ops[train], y[train], kind))})
    return pd.DataFrame(rows)


def table(df: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    return df.groupby(index, sort=False)[list(FIELDS)].mean()


def markdown(df: pd.DataFrame) -> str:
    head = list(df.index.names) + list(df.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, row in df.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        cells = [str(k) for k in key] + [f"{row[c]:.1f}" if c == "mape_pct" else f"{row[c]:.3f}" for c in df.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def features_table(df: pd.DataFrame) -> str:
    """Mean over the 22 public devices per (n, features): connected held-out figures, and tau
    and MAPE over all held-out cells (path-less ones included)."""
    public = df[~df["device"].str.endswith("_own")]
    con = table(public[public["subset"] == "connected"], ["n", "features"])
    every = table(public[public["subset"] == "all"], ["n", "features"])
    lines = ["| n | features | tau (connected) | rho | MAPE % | within 5% | within 10% | tau (all) | MAPE % (all) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (n, kind), r in con.iterrows():
        a = every.loc[(n, kind)]
        name = f"**{kind}**" if kind == DEFAULT_FEATURES else kind
        lines.append(f"| {n} | {name} | {r.kendall_tau:.3f} | {r.spearman_rho:.3f} | {r.mape_pct:.1f} "
                     f"| {r.within_5pct:.3f} | {r.within_10pct:.3f} | {a.kendall_tau:.3f} | {a.mape_pct:.1f} |")
    return "\n".join(lines)


def devices_table(df: pd.DataFrame, n: int) -> str:
    """Per device at sample size n: the default features' connected held-out figures, their
    tau / MAPE over all held-out cells, and the tau of the other feature sets."""
    sub = df[df["n"] == n]
    t = table(sub, ["features", "subset", "device"])
    others = [k for k in FEATURE_SETS if k != DEFAULT_FEATURES and k in set(sub["features"])]
    lines = ["| device | tau | rho | MAPE % | within ±5% | within ±10% | all held-out: tau / MAPE % | tau "
             + " / ".join(others) + " |", "|---|---|---|---|---|---|---|---|"]
    for device in dict.fromkeys(sub["device"]):
        r = t.loc[(DEFAULT_FEATURES, "connected", device)]
        a = t.loc[(DEFAULT_FEATURES, "all", device)]
        o = " / ".join(f"{t.loc[(k, 'connected', device)].kendall_tau:.3f}" for k in others)
        lines.append(f"| {device} | {r.kendall_tau:.3f} | {r.spearman_rho:.3f} | {r.mape_pct:.1f} "
                     f"| {r.within_5pct:.2f} | {r.within_10pct:.2f} | {a.kendall_tau:.3f} / {a.mape_pct:.1f} | {o} |")
    return "\n".join(lines)


def plot(agg: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = agg.reset_index()
    sub = sub[(sub["features"] == DEFAULT_FEATURES) & (sub["subset"] == "connected")]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    colors = plt.get_cmap("tab20").colors
    for k, (device, g) in enumerate(sub.groupby("device", sort=False)):
        style = {"color": colors[k % 20], "linestyle": ("-", "--")[k // 20 % 2], "marker": "o", "label": device}
        axes[0].plot(g["n"], g["kendall_tau"], **style)
        # Exactly additive devices have MAPE 0: drawn at 0.01% so the log axis shows them.
        axes[1].plot(g["n"], np.maximum(g["mape_pct"], 0.01), **style)
    axes[0].set(xlabel="measured architectures", ylabel="Kendall tau (held-out, connected)")
    axes[1].set(xlabel="measured architectures", ylabel="MAPE % (held-out, connected)", yscale="log")
    axes[1].legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"additive per-op model ({DEFAULT_FEATURES} features) fitted by NNLS")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--features", nargs="+", default=list(FEATURE_SETS), choices=list(FEATURE_SETS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/additive_fit.md as it is")
    a = ap.parse_args()
    data_dir = resolve_data_dir(a.data_dir)
    t0 = time.perf_counter()
    df = run(data_dir, a.sizes, a.seeds, a.features)
    wall = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(df, RESULTS / "public_device_fit_runs.csv", index=False)
    agg = table(df, ["features", "subset", "device", "n"])
    write_csv_atomic(agg, RESULTS / "public_device_fit.csv")
    plot(agg, RESULTS / "public_device_fit.png")

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}; {len(df) // 3} fits (+ 5-fold CV each) in {wall:.1f} s")
    print(f"mean over {a.seeds} seeds; held-out = every architecture not in the sample\n")
    public = df[~df["device"].str.endswith("_own")]  # the average is over the 22 public devices
    for subset in ("all", "connected"):
        print(f"## Feature sets compared ({subset} held-out): mean over the 22 public devices")
        print(markdown(table(public[public["subset"] == subset], ["n", "features"])), "\n")
    for subset in ("connected", "all", "cv"):
        print(f"## Per device, features={DEFAULT_FEATURES}, {subset} held-out")
        sel = df[(df["features"] == DEFAULT_FEATURES) & (df["subset"] == subset)]
        print(markdown(table(sel, ["device", "n"])), "\n")
    print(f"## Best feature set per device at n={a.sizes[len(a.sizes) // 2]} (connected held-out, by tau)")
    mid = df[(df["n"] == a.sizes[len(a.sizes) // 2]) & (df["subset"] == "connected")]
    best = table(mid, ["device", "features"])["kendall_tau"].unstack()
    best["best"] = best.idxmax(axis=1)
    print(best.round(3).to_string(), "\n")
    print(f"wrote {RESULTS}/public_device_fit_runs.csv, public_device_fit.csv, public_device_fit.png")
    full_grid = (sorted(a.sizes) == [50, 100, 200] and a.seeds == 5 and sorted(a.features) == sorted(FEATURE_SETS))
    if not a.no_docs and full_grid:  # a smaller grid must not replace the documented one
        note = f"{len(df) // 3} fits (+ 5-fold CV each) in {wall:.1f} s"
        mid = a.sizes[len(a.sizes) // 2]
        write_section("additive_fit.md", "public_device_fit:features", features_table(df), note=note)
        print(f"wrote {write_section('additive_fit.md', 'public_device_fit:devices', devices_table(df, mid), note=note)}")


if __name__ == "__main__":
    main()
