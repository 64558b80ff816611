"""How well the default proxy schedule of `evaluator=train` ranks architectures, and what it costs.

For each space (nb201, mbv3): draw --archs distinct architectures (seeded, degenerate cells
left out), train each on Fashion-MNIST with the default proxy schedule and with one
--factor times longer (more epochs, same data), and report Kendall tau and Spearman rho
between the two validation accuracies, and seconds per evaluation. Per-architecture results
go to benchmarks/results/proxy_fidelity.csv as they finish (a re-run skips what is there),
the table into docs/training.md.

    python -m benchmarks.proxy_fidelity                       # 30 archs per space, ~1 h here
    python -m benchmarks.proxy_fidelity --archs 8 --no-docs   # a quick look
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ["space", "arch", "schedule", "epochs", "val_accuracy", "seconds"]
# The proxy network of each space: NB-201 narrowed and shortened (the full C=16, N=5 cell
# stack takes minutes per epoch on a 2-core CPU); MobileNetV3 at its own width.
PROXY_SPACE = {"nb201": {"name": "nb201", "channels": 8, "cells_per_stage": 1},
               "mbv3": {"name": "mbv3", "width_mult": 0.25}}


def _archs(space, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        a = space.sample(rng)
        if a not in seen and not space.is_degenerate(a):
            seen.add(a)
            out.append(a)
    return out


def _done(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path) as fh:
        return {(r["space"], r["arch"], r["schedule"]): r for r in csv.DictReader(fh)}


def main() -> None:
    from scipy.stats import kendalltau, spearmanr

    from hwnas.config import DatasetConfig, EvaluatorConfig
    from hwnas.evaluators import EVALUATORS
    from hwnas.spaces import SPACES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spaces", nargs="+", default=["nb201", "mbv3"])
    p.add_argument("--archs", type=int, default=30)
    p.add_argument("--factor", type=int, default=4, help="the long schedule has factor x the epochs")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: another job can share the machine)")
    p.add_argument("--report", action="store_true",
                   help="train nothing: the table from what benchmarks/results/proxy_fidelity.csv holds")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/training.md as it is")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "proxy_fidelity.csv"
    done = _done(out)
    new_file = not out.is_file()
    fh = open(out, "a", newline="")
    writer = csv.writer(fh)
    if new_file:
        writer.writerow(COLUMNS)
    default = EvaluatorConfig(name="train")
    schedules = {"default": default, "long": EvaluatorConfig(name="train", epochs=default.epochs * a.factor)}
    dataset = DatasetConfig(name=a.dataset, source="files", val_fraction=0.1)  # as conf/dataset/fashion_mnist.yaml
    rows = []
    for space_name in a.spaces:
        cfg = PROXY_SPACE[space_name]
        space = SPACES.get(space_name).from_config(cfg, os.environ.get("HWNAS_DATA_DIR"))
        archs = _archs(space, a.archs, a.seed)
        acc = {k: {} for k in schedules}
        secs = {k: {} for k in schedules}
        for label, sched in schedules.items():
            ev = None if a.report else EVALUATORS.get("train")(space, sched, dataset, len(archs), None, seed=a.seed)
            for i, arch in enumerate(archs):
                key = (space_name, str(arch), label)
                if key in done:
                    acc[label][arch] = float(done[key]["val_accuracy"])
                    secs[label][arch] = float(done[key]["seconds"])
                    continue
                if ev is None:
                    continue
                t0 = time.perf_counter()
                value = ev.evaluate(arch)[0]
                dt = time.perf_counter() - t0
                writer.writerow([space_name, str(arch), label, sched.epochs, repr(value), f"{dt:.3f}"])
                fh.flush()
                acc[label][arch] = value
                secs[label][arch] = dt
                print(f"{space_name} {label} {i + 1}/{len(archs)}: {value:.2f}% in {dt:.1f} s  {arch}", flush=True)
        both = [x for x in archs if x in acc["default"] and x in acc["long"]]  # --report: what finished
        if len(both) < 3:
            print(f"{space_name}: {len(both)} architectures trained with both schedules; too few for a rank correlation")
            continue
        d_acc, l_acc = [acc["default"][x] for x in both], [acc["long"][x] for x in both]
        tau, rho = kendalltau(d_acc, l_acc).statistic, spearmanr(d_acc, l_acc).statistic
        rows.append((space_name, cfg, len(both), tau, rho, np.median(list(secs["default"].values())),
                     np.median([secs["long"][x] for x in both]), np.mean(d_acc), np.mean(l_acc)))
    fh.close()
    d = default
    lines = [f"Default proxy: {d.epochs} epochs on {d.train_subset or 'all'} training images of {a.dataset}, "
             f"batch {d.batch_size}, {d.optimizer} lr {d.lr} (cosine), weight decay {d.weight_decay}; long: "
             f"{a.factor}x the epochs. Validation accuracy (10% of the training files) ranks the architectures.",
             "",
             "| space (proxy network) | archs | Kendall tau | Spearman rho | s/eval default | s/eval long "
             "| mean val acc default | mean val acc long |",
             "|---|---|---|---|---|---|---|---|"]
    for name, cfg, n, tau, rho, s_d, s_l, m_d, m_l in rows:
        net = ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "name")
        lines.append(f"| {name} ({net}) | {n} | {tau:.3f} | {rho:.3f} | {s_d:.1f} | {s_l:.1f} | {m_d:.2f} | {m_l:.2f} |")
    table = "\n".join(lines)
    print(table)
    if not a.no_docs:
        write_section("training.md", "proxy_fidelity", table,
                      note=f"median seconds per evaluation with {a.threads} torch thread(s)")


if __name__ == "__main__":
    main()
