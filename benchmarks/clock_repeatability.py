"""How well timings of the same architectures repeat, minutes apart, under each way of scaling
by the machine's speed: the noise ceiling of a latency table on this machine.

Times N NAS-Bench-201 architectures (CIFAR-10, onnxruntime CPU, one thread, batch 1) twice, the
second pass in another order, in batches of 8 with three reference architectures timed first in
every round (of 9 drawn, the fewest, median and most parameters), as hwnas-profile's timing does
(timing.time_interleaved, 20 rounds). Then it compares the two passes (Kendall tau, MAPE, within
5% / 10%) for each scaling: none, by one reference (light, mid, heavy: each round divided by
that reference's speed), and by the light and heavy references interpolated at each model's
own level (timing.ReferenceClock, what the profiler does).

It also bounds the Kendall tau any table can reach when validated against one timing: per pair of
architectures, a timing orders them rightly with some probability p, so one timing agrees with the
truth at E[2p-1] and two independent timings with each other at E[(2p-1)^2] = the pass-to-pass tau;
by Jensen's inequality E[2p-1] <= sqrt(pass-to-pass tau).

    python -m benchmarks.clock_repeatability            # 160 architectures, ~5 min; stop other work first
    python -m benchmarks.clock_repeatability --n 40 --no-docs

The table goes to stdout and into docs/latency.md (section `clock_repeatability:<cpu>`, one per CPU
model, e.g. `clock_repeatability:intel-xeon-processor`).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import machine_line, write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import machine_line, write_section

BATCH = 8  # architectures per interleaved batch, as the profiler's e2e batches


def collect(n: int, seed: int, progress: bool = True) -> dict:
    """t[j][p]: architecture j's per-round runs in pass p; batches[k]: (pass, architectures) of the
    k-th batch timed, whose reference runs are t[n + r][k] (r = 0, 1, 2: light, mid, heavy)."""
    from tqdm import tqdm

    from hwnas.onnx_io import ort_session, random_input
    from hwnas.profiling.profiler import export_arch, reference_candidates, sample_archs
    from hwnas.spaces import SPACES
    from hwnas.timing import ROUNDS, time_interleaved

    space = SPACES.get("nb201")()
    archs = sample_archs(space, n, seed)
    nine = reference_candidates(space, "cifar10", seed)  # the profiler's light and heavy, and the median one
    every = archs + [nine[0], nine[4], nine[-1]]
    x = random_input((3, 32, 32), 1, 0)
    t = {j: [] for j in range(len(every))}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        def run_of(j):
            if j not in runs:
                path = Path(tmp) / f"a{j}.onnx"
                export_arch(space, every[j], "cifar10", path, 1, seed)
                sess = ort_session(path, threads=1, inter_op_threads=1, graph_optimization="all",
                                   providers=["CPUExecutionProvider"])
                runs[j] = lambda: sess.run(None, {"input": x})
            return runs[j]

        batches = [(p, (list(range(n)) if p == 0 else list(np.random.default_rng(seed + 1).permutation(n)))[s:s + BATCH])
                   for p in range(2) for s in range(0, n, BATCH)]
        for p, idx in tqdm(batches, desc="batches", disable=not progress):
            idx = [n, n + 1, n + 2] + idx
            for j, per_round in zip(idx, time_interleaved([run_of(j) for j in idx], 10, 100, ROUNDS,
                                                          first_calls=5, first_models=3)):
                t[j].append(per_round)
    return {"n": n, "t": t, "batches": batches}


def estimates(data: dict, method: str) -> np.ndarray:
    """2 x n: each architecture's median in each pass under `method`."""
    from hwnas.timing import ReferenceClock

    n, t = data["n"], data["t"]
    refs = {"light": n, "mid": n + 1, "heavy": n + 2}
    names = ["light", "heavy"] if method == "light+heavy" else [method]
    levels = [float(np.median(np.concatenate([np.concatenate(r) for r in t[refs[m]]]))) for m in names
              if m in refs]
    out = np.zeros((2, n))
    for k, (p, idx) in enumerate(data["batches"]):
        models = [t[j][p] for j in idx]
        if method != "none":
            models, _ = ReferenceClock(levels_ms=levels).correct(models, [t[refs[m]][k] for m in names])
        for j, rounds in zip(idx, models):
            out[p, j] = np.median(np.concatenate(rounds))
    return out


METHODS = {"none": "none (median of the runs)", "light": "one reference: the light one",
           "mid": "one reference: median parameters (the profiler before)",
           "heavy": "one reference: the heavy one",
           "light+heavy": "light and heavy, interpolated at the model's level (hwnas-profile now)"}


def main() -> None:
    from hwnas.latency.fidelity import fidelity

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    data = collect(args.n, args.seed)
    lines = ["| scaling | Kendall tau | a perfect table's tau, at most | MAPE | within 5% | within 10% |",
             "|---|---|---|---|---|---|"]
    for m, label in METHODS.items():
        r = fidelity(*estimates(data, m))  # the first pass against the second
        tau = r["kendall_tau"]
        lines.append(f"| {label} | {tau:.3f} | {np.sqrt(max(tau, 0)):.3f} | {r['mape_pct']:.1f}% | "
                     f"{100 * r['within_5pct']:.0f}% | {100 * r['within_10pct']:.0f}% |")
    note = f"{args.n} architectures timed twice, minutes apart; onnxruntime CPU, 1 thread, batch 1"
    text = "\n".join(lines)
    print(text + "\n\n" + machine_line(note))
    if not args.no_docs:
        from hwnas.machine import cpu_slug

        print(f"wrote {write_section('latency.md', f'clock_repeatability:{cpu_slug()}', text, note)}")


if __name__ == "__main__":
    main()
