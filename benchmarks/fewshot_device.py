"""Few-shot device adoption, leave one device out: HELP-style predictor vs additive fit vs FLOPs.

For each of the 19 devices of nb201_latency_ms.csv as the target: meta-train the few-shot
predictor (hwnas/meta/fewshot.py) on the 18 others (once per target and reference-set size),
"measure" n architectures of the target (the reference set first, then seeded random others),
predict all 15,625 and score against the truth: Spearman and Kendall over every architecture,
of the table as the tool writes it (measured architectures keep their values). The additive
fit (hwnas/latency/additive_fit.py, default features) gets the same n measured architectures;
FLOPs (Conv2d + Linear multiply-accumulates of hwnas's CIFAR-10 network x 2) measures nothing.

How n counts: the reference architectures count. n = 5 uses a 5-reference model (the first
5 of the 10 references), n = 10 the 10 references alone, n = 20 and 50 the 10 references +
10 / 40 random others (seeded). Seeds vary the random others, so n <= 10 has one value.

    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.fewshot_device            # + docs/fewshot.md
    HWNAS_DATA_DIR=../shared/benchmarks python -m benchmarks.fewshot_device --devices pixel3 raspi4 --no-docs
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

import numpy as np
import pandas as pd

from hwnas.config import MetaConfig
from hwnas.data.nb201 import latency_devices, load_latency
from hwnas.data.paths import resolve_data_dir
from hwnas.io import write_csv_atomic
from hwnas.latency.additive_fit import fit_additive

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import markdown_table, write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import markdown_table, write_section

RESULTS = REPO / "benchmarks" / "results"
HELP_SPEARMAN_10 = 0.932  # HELP (NeurIPS 2021): mean Spearman from 10 samples on its six devices


def flops(space, ops: np.ndarray) -> np.ndarray:
    """FLOPs of every architecture's CIFAR-10 network (hwnas/export/checks.count_macs x 2).

    Every edge runs in hwnas's network, so the count depends only on how many edges hold each
    convolution: one network per (conv1x1, conv3x3) count pair is counted, then looked up.
    """
    from hwnas.export.checks import count_macs
    from hwnas.spaces.nb201 import NB201Arch

    c1, c3 = (ops == 2).sum(1), (ops == 3).sum(1)
    memo = {}
    for a, b in sorted(set(zip(c1.tolist(), c3.tolist()))):
        arch = NB201Arch(tuple([2] * a + [3] * b + [1] * (6 - a - b)))
        memo[(a, b)] = 2 * count_macs(space.build(arch, 10), (3, 32, 32))
    return np.array([memo[(a, b)] for a, b in zip(c1.tolist(), c3.tolist())], dtype=float)


def scores(pred: np.ndarray, y: np.ndarray) -> dict:
    from scipy.stats import kendalltau, spearmanr

    return {"spearman": float(spearmanr(pred, y).statistic), "kendall": float(kendalltau(pred, y).statistic)}


def run(data_dir, devices, sizes, seeds, meta: MetaConfig, log=print) -> pd.DataFrame:
    from hwnas.latency.fewshot import all_ops, excluded_devices, meta_model
    from hwnas.meta.fewshot import predict, reference_indices
    from hwnas.spaces.nb201 import NB201Space

    space = NB201Space(data_dir=data_dir)
    ops = all_ops(space)
    lat = load_latency(data_dir)
    f = flops(space, ops)
    rows = []
    n_refs = sorted({min(n, meta.n_reference) for n in sizes}, reverse=True)
    for target in devices:
        y = lat[target].to_numpy(float)
        rows.append({"device": target, "method": "flops", "n": 0, "seed": 0, **scores(f, y)})
        for n_ref in n_refs:
            m = MetaConfig(**{**vars(meta), "n_reference": n_ref, "exclude": []})
            t0 = time.perf_counter()
            state, _, _ = meta_model(data_dir, m, excluded_devices(data_dir, target))
            assert target not in state["sources"]
            wall = time.perf_counter() - t0
            refs = reference_indices(ops, n_ref)
            rest = np.setdiff1d(np.arange(len(ops)), refs)
            for n in (s for s in sizes if min(s, meta.n_reference) == n_ref):
                for seed in range(seeds if n > n_ref else 1):
                    extra = np.random.default_rng(seed).choice(rest, size=n - n_ref, replace=False)
                    idx = np.concatenate([refs, extra])
                    for method in ("fewshot", "additive"):
                        p = (predict(state, ops, idx, y[idx]) if method == "fewshot"
                             else np.maximum(fit_additive(ops[idx], y[idx]).predict(ops), 0.5 * y[idx].min()))
                        p[idx] = y[idx]  # the table as the tool writes it
                        rows.append({"device": target, "method": method, "n": n, "seed": seed, **scores(p, y),
                                     "meta_train_s": wall if method == "fewshot" else np.nan})
            log(f"{target}: n_reference={n_ref} meta-trained in {wall:.1f} s; " + ", ".join(
                f"{r['method']}@{r['n']}={r['spearman']:.3f}" for r in rows[-4:]))
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over devices (of the mean over seeds) per method and n: Spearman / Kendall."""
    per_dev = df.groupby(["method", "n", "device"])[["spearman", "kendall"]].mean().reset_index()
    t = per_dev.groupby(["method", "n"])[["spearman", "kendall"]].agg(["mean", "min"]).reset_index()
    out = []
    for n in sorted(set(df["n"]) - {0}):
        row = {"measured n": n}
        for method in ("fewshot", "additive"):
            r = t[(t["method"] == method) & (t["n"] == n)].iloc[0]
            row[f"{method} rho (min)"] = f"{r[('spearman', 'mean')]:.3f} ({r[('spearman', 'min')]:.3f})"
            row[f"{method} tau"] = f"{r[('kendall', 'mean')]:.3f}"
        r = t[t["method"] == "flops"].iloc[0]
        row["FLOPs rho / tau"] = f"{r[('spearman', 'mean')]:.3f} / {r[('kendall', 'mean')]:.3f}"
        out.append(row)
    return pd.DataFrame(out)


def per_device(df: pd.DataFrame, n: int) -> pd.DataFrame:
    sub = df[(df["n"] == n) | (df["method"] == "flops")]
    t = sub.groupby(["device", "method"])["spearman"].mean().unstack()
    return pd.DataFrame({"device": t.index, f"fewshot rho @{n}": t["fewshot"].map("{:.3f}".format),
                         f"additive rho @{n}": t["additive"].map("{:.3f}".format),
                         "FLOPs rho": t["flops"].map("{:.3f}".format)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=None, help="targets (default: all 19)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 50])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=MetaConfig.steps)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-docs", action="store_true")
    a = ap.parse_args()
    data_dir = resolve_data_dir(a.data_dir)
    devices = a.devices or latency_devices(data_dir)
    t0 = time.perf_counter()
    df = run(data_dir, devices, a.sizes, a.seeds, MetaConfig(steps=a.steps))
    wall = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(df, RESULTS / "fewshot_device_runs.csv", index=False)
    s, d = summary(df), per_device(df, 10)
    n10 = df[(df["method"] == "fewshot") & (df["n"] == 10)].groupby("device")["spearman"].mean().mean()
    verdict = (f"HELP's mean Spearman {HELP_SPEARMAN_10} from 10 samples (its six devices): ours {n10:.3f} over "
               f"{len(devices)} held-out devices, {'past' if n10 > HELP_SPEARMAN_10 else 'not past'} it")
    print(markdown_table(s), "\n\n", markdown_table(d), "\n\n", verdict, sep="")
    mt = df["meta_train_s"].dropna()
    note = (f"{len(devices)} held-out devices, {a.seeds} seeds of the random extra architectures, "
            f"meta-training {a.steps} steps ({mt.mean():.0f} s mean per model, cache cleared or not); "
            f"{wall:.0f} s in all")
    print(note)
    if not a.no_docs:
        write_section("fewshot.md", "fewshot_device:summary", markdown_table(s) + "\n\n" + verdict + ".", note=note)
        print(f"wrote {write_section('fewshot.md', 'fewshot_device:devices', markdown_table(d), note=note)}")


if __name__ == "__main__":
    main()
