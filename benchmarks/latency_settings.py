"""Fresh default latency tables on this machine, per setting users run, with and without the
reference clock: how well each validates, next to the noise ceiling, and what it cost.

For every setting (threads 1 and every core, batch 1 and 32), clock on (and off for --off-for), profiles
NAS-Bench-201 CIFAR-10 afresh into benchmarks/results/latency_settings/ (never the committed
tables) with hwnas-profile's defaults (batch 32: repeats 100, e2e_repeats 30, to bound the cost),
then prints one row each:
  * validation of the kept calibration on the held-out architectures (Kendall tau, Spearman rho,
    MAPE, within 5% / 10%) and the verdict;
  * the noise ceiling: validation architectures timed a second time minutes later (median
    difference, share within 10%), and how much the machine's speed varied (reference clock);
  * the profile's cost against timing all 15,625 architectures end to end.

    python -m benchmarks.latency_settings                   # idle: stop other work first
    python -m benchmarks.latency_settings --load steady     # one busy process per core beside it
    python -m benchmarks.latency_settings --load burst      # those, running 3 s of every 10
    python -m benchmarks.latency_settings --settings t1-b1 --off-for --no-docs
    python -m benchmarks.latency_settings --settings t1-b1 --off-for --seeds 0 1 2 3 4 --label idle-seeds \
        --holdout benchmarks/results/many/many.json   # also score each table on another run's timings

--holdout: a table of many architectures timed end to end in another process on the same machine
(`hwnas-profile calibrate=570 validate=30 seed=1 device=many out_dir=benchmarks/results/many`); each
fresh table's predictions are scored on all of them too, after one scale factor (the median ratio:
the machine's speed differs between runs), so tau is untouched and within-10% mildly flattered.

The rows go to stdout and into docs/latency.md (section `latency_settings:<label>:<cpu>`, one per CPU
model, e.g. `latency_settings:idle:intel-xeon-processor`).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
    from benchmarks.profile_fidelity import per_arch_seconds
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section
    from profile_fidelity import per_arch_seconds

N_ARCHS = 15625
SETTINGS = {"t1-b1": (1, 1), "tall-b1": (0, 1), "t1-b32": (1, 32), "tall-b32": (0, 32)}


def score_on(table_path: Path, holdout: Path) -> dict:
    """Kendall tau and within 10% of a table's predictions on another table's end-to-end timings."""
    import numpy as np

    from hwnas.latency.fidelity import fidelity
    from hwnas.latency.model import LatencyModel
    from hwnas.latency.table import LatencyTable
    from hwnas.spaces import SPACES

    space = SPACES.get("nb201")()
    other = LatencyTable.load(holdout)
    archs = [space.parse(c) for c in other.e2e]
    y = np.array([other.measured_ms(c) for c in other.e2e])
    pred = LatencyModel(LatencyTable.load(table_path), space, "cifar10").predict(archs)
    f = fidelity(pred * np.median(y / pred), y)
    return {"holdout_n": len(y), "holdout_tau": f["kendall_tau"], "holdout_w10": f["within_10pct"]}


def one(setting: str, clock: bool, out: Path, seed: int, holdout: Path | None = None) -> dict:
    from hwnas.apps.profile import default_device_name, run_profile
    from hwnas.profiling.config import ProfileConfig, RunnerConfig

    threads, batch = SETTINGS[setting]
    threads = threads or os.cpu_count() or 1
    extra = {"repeats": 100, "e2e_repeats": 30} if batch > 1 else {}
    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), threads=threads, batch=batch, seed=seed,
                        out_dir=str(out), overwrite=True, progress=False, clock=clock, **extra)
    cfg.device = default_device_name(cfg) + ("" if clock else "-noclock")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    rep = run_profile(cfg)
    wall = time.perf_counter() - t0
    table = json.loads(rep.path.read_text())
    cost, noise = table["cost"], table["noise"] or {}
    per_arch_s = per_arch_seconds(cost)
    fid = (table["validation"] or {}).get("calibrated") or {}
    return {"setting": setting, "seed": seed, "threads": threads, "batch": batch, "clock": clock, "load_before": load,
            "tau": fid.get("kendall_tau"), "tau_ci": ((table["validation"] or {}).get("interval") or {}).get("kendall_tau"),
            "rho": fid.get("spearman_rho"), "mape": fid.get("mape_pct"),
            "w5": fid.get("within_5pct"), "w10": fid.get("within_10pct"),
            "mode": (table["calibration"] or {}).get("selected"), "verdict": table["verdict"]["level"],
            "recheck_diff": noise.get("e2e_recheck_rel_diff_median"), "recheck_w10": noise.get("e2e_recheck_within_10pct"),
            "speed": noise.get("machine_speed_p10_p90"), "seconds": wall,
            "all_archs_h": per_arch_s * N_ARCHS / 3600, "ratio": per_arch_s * N_ARCHS / wall,
            **(score_on(rep.path, holdout) if holdout else {})}


def mean_row(rows: list[dict]) -> dict:
    """One row of the mean over seeds (numbers averaged; verdicts counted)."""
    out = dict(rows[0], seed="mean", tau_ci=None)
    for k in ("tau", "rho", "mape", "w5", "w10", "recheck_diff", "recheck_w10", "seconds", "all_archs_h", "ratio",
              "load_before", "holdout_tau", "holdout_w10"):
        if k not in out:
            continue
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = sum(vals) / len(vals) if vals else None
    out["speed"] = [min(r["speed"][0] for r in rows), max(r["speed"][1] for r in rows)] if all(r["speed"] for r in rows) else None
    good = sum(r["verdict"] == "good" for r in rows)
    out["verdict"], out["mode"] = f"{good}/{len(rows)} good", "-"
    return out


def row(r: dict) -> str:
    pct = lambda v, d=0: "-" if v is None else f"{100 * v:.{d}f}%"  # noqa: E731
    speed = "-" if not r["speed"] else f"{r['speed'][0]:.2f}-{r['speed'][1]:.2f}x"
    ci = f" ({r['tau_ci'][0]:.2f}-{r['tau_ci'][1]:.2f})" if r.get("tau_ci") else ""
    return (f"| {r['setting']} | {r['seed']} | {'on' if r['clock'] else 'off'} | {r['tau']:.3f}{ci} | {r['rho']:.3f} | {r['mape']:.1f}% | "
            f"{pct(r['w5'])} | {pct(r['w10'])} | {r['mode']} | {r['verdict']} | "
            f"{pct(r['recheck_diff'], 1)} / {pct(r['recheck_w10'])} | "
            f"{speed} | {r['seconds']:.0f} s | {r['all_archs_h']:.1f} h ({r['ratio']:.0f}x) | {r['load_before']:.2f} |"
            + (f" {r['holdout_tau']:.3f} / {pct(r['holdout_w10'])} |" if "holdout_tau" in r else ""))


# What runs beside the profiles, and the section label it defaults to.
LOADS = {"none": ("idle", "nothing else started"),
         "steady": ("loaded", "one busy process per core at the same priority, all along"),
         "burst": ("burst", "one busy process per core at the same priority, running 3 s of every 10: a noisy "
                            "neighbour in phases of seconds")}


@contextmanager
def background_load(kind: str, on_s: float = 3.0, off_s: float = 7.0):
    """Busy processes beside the profiles: none; steady (one per core, all along); burst (the same,
    stopped and resumed so they run `on_s` of every `on_s + off_s` seconds)."""
    if kind == "none":
        yield
        return
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    stop = threading.Event()

    def phases() -> None:
        while not stop.wait(on_s):
            for p in procs:
                p.send_signal(signal.SIGSTOP)
            if stop.wait(off_s):
                break
            for p in procs:
                p.send_signal(signal.SIGCONT)

    pacer = threading.Thread(target=phases, daemon=True)
    if kind == "burst":
        pacer.start()
    try:
        yield
    finally:
        stop.set()
        if pacer.is_alive():
            pacer.join()
        for p in procs:
            p.kill()  # SIGKILL ends a stopped process too
            p.wait()


HEADER = ("| setting | seed | clock | tau (95% interval) | rho | MAPE | within 5% | within 10% | calibration | verdict | noise ceiling: "
          "re-timed diff / within 10% | machine speed p10-p90 | profile | all 15,625 end to end | load before |\n"
          "|" + "---|" * 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--off-for", nargs="*", default=["t1-b1"], choices=list(SETTINGS),
                    help="settings also profiled with clock=false, the timing before the reference clock")
    ap.add_argument("--load", default="none", choices=list(LOADS), help="what this script runs beside the profiles")
    ap.add_argument("--label", help="the section name's label (default: idle, loaded or burst after --load)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="profile seeds (which architectures "
                    "calibrate and validate); several: one table each, and their mean")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "latency_settings"))
    ap.add_argument("--holdout", type=Path, help="also score each table on this table's end-to-end timings")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    label, load_text = LOADS[args.load]
    args.label = args.label or label

    header = HEADER
    if args.holdout:
        from hwnas.latency.table import LatencyTable

        n = len(LatencyTable.load(args.holdout).e2e)
        header = HEADER.replace(" load before |\n", f" load before | on {n} archs timed in another run: tau / within 10% |\n") + "---|"
    print(header)
    with background_load(args.load):
        rows = profile_rows(args)
    if not args.no_docs:
        n = sum(r["seed"] != "mean" for r in rows)
        text = "\n".join([f"{args.label.split('-')[0].capitalize()} machine ({load_text}); {n} fresh default profiles "
                          "(NAS-Bench-201, CIFAR-10; batch 32: repeats 100, e2e_repeats 30).", "", header, *map(row, rows)])
        from hwnas.machine import cpu_slug

        print(f"wrote {write_section('latency.md', f'latency_settings:{args.label}:{cpu_slug()}', text)}")


def profile_rows(args) -> list[dict]:
    """One row per setting, clock and seed (and the mean over seeds), printed as they come."""
    rows = []
    for setting in args.settings:
        for clock in (True, False) if setting in args.off_for else (True,):
            group = []
            for seed in args.seeds:
                out = Path(args.out) / (f"seed{seed}" if len(args.seeds) > 1 else "")
                group.append(one(setting, clock, out, seed, args.holdout))
                print(row(group[-1]), flush=True)
            rows += group + ([mean_row(group)] if len(group) > 1 else [])
            if len(group) > 1:
                print(row(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
