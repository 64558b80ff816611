"""Latency-table fidelity and cost on this machine's CPU (onnxruntime, 1 thread, batch 1).

Profiles NAS-Bench-201 afresh into benchmarks/results/profile_fidelity/ (never the committed
table), then prints:
  * the cost of building the table: seconds and timed runs, for the operations alone and with
    the end-to-end timings of calibration + validation;
  * the estimated cost of timing all 15,625 architectures end to end instead
    (mean measured e2e latency x repeats x 15,625; and with the measured per-architecture
    export + session overhead) and the ratio to the table's cost;
  * validation figures (Kendall tau, Spearman rho, MAPE, within 5% / 10%) of the raw table
    sum and of the calibrated prediction on architectures disjoint from the calibration ones;
  * validation MAPE against the number k of end-to-end timings the calibration is fitted on.

    python -m benchmarks.profile_fidelity                      # hwnas-profile's defaults: calibrate=40 validate=50
    python -m benchmarks.profile_fidelity --validate 100 --threads 2

The figures go to stdout and into docs/profiling.md (section profile_fidelity; `--no-docs`
to skip).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

N_ARCHS = 15625


def per_arch_seconds(cost: dict) -> float:
    """Measured seconds to export and time one architecture once (export, session, warm-up,
    repeats): the profile's first end-to-end pass (its re-checks reuse the export, so all its
    end-to-end seconds over all its timings would understate it; older tables: those)."""
    if cost.get("e2e_first_models"):
        return cost["e2e_first_seconds"] / cost["e2e_first_models"]
    return cost["e2e_seconds"] / max(cost["e2e_models"], 1)


def main() -> None:
    from hwnas.profiling.config import ProfileConfig

    default = ProfileConfig()  # hwnas-profile's defaults, so the figures are a default profile's
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", type=int, default=default.calibrate)
    ap.add_argument("--validate", type=int, default=default.validate)
    ap.add_argument("--threads", type=int, default=default.threads)
    ap.add_argument("--repeats", type=int, default=default.repeats)
    ap.add_argument("--e2e-repeats", type=int, default=default.e2e_repeats)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "profile_fidelity"))
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/profiling.md as it is")
    args = ap.parse_args()

    from hwnas.apps.profile import default_device_name, run_profile
    from hwnas.profiling.config import RunnerConfig
    from hwnas.machine import cpu_governor, cpu_model

    cfg = ProfileConfig(runner=RunnerConfig(name="ort_cpu"), threads=args.threads, repeats=args.repeats,
                        e2e_repeats=args.e2e_repeats, calibrate=args.calibrate, validate=args.validate,
                        seed=args.seed, out_dir=args.out, overwrite=True, progress=False)
    cfg.device = default_device_name(cfg)
    load = os.getloadavg()
    rep = run_profile(cfg)
    cost = __import__("json").loads(rep.path.read_text())["cost"]
    per_arch_s = per_arch_seconds(cost)
    timing_only_s = rep.e2e_mean_ms * 1e-3 * cfg.e2e_repeats * N_ARCHS
    whole_s = per_arch_s * N_ARCHS
    table_s = cost["op_seconds"]
    with_e2e_s = cost["op_seconds"] + cost["e2e_seconds"]

    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    say(f"CPU: {cpu_model()}, governor {cpu_governor()}, threads {cfg.threads}, batch {cfg.batch}, "
        f"load average before {load[0]:.2f} (shared machine: timings are noisy)")
    print(f"table: {rep.path}")
    say(f"table build: {cost['op_models']} models (ops, chains of ops, overhead probes), {cost['op_timed_runs']} timed runs, "
        f"{table_s:.1f} s; with {cost['e2e_models']} end-to-end architectures "
        f"({cost['e2e_timed_runs']} timed runs): {with_e2e_s:.1f} s")
    say(f"all {N_ARCHS} architectures end to end: mean e2e {rep.e2e_mean_ms:.3f} ms x {cfg.e2e_repeats} repeats x "
        f"{N_ARCHS} = {timing_only_s / 3600:.2f} h of timed runs alone "
        f"(ratio to the table build {timing_only_s / table_s:.0f}x); with the measured export and warm-up "
        f"cost per architecture ({per_arch_s:.2f} s): {whole_s / 3600:.2f} h "
        f"(ratio {whole_s / table_s:.0f}x to the table, {whole_s / with_e2e_s:.0f}x to table + calibration + validation)")
    val = rep.validation or {}
    for kind in ("raw", "calibrated", "calibrated_linear"):
        f = val.get(kind)
        if f:
            say(f"validation ({val['n']} archs, disjoint from the {args.calibrate} calibration archs), {kind:17s}: "
                f"tau {f['kendall_tau']:.3f}  rho {f['spearman_rho']:.3f}  MAPE {f['mape_pct']:.1f}%  "
                f"within 5% {100 * f['within_5pct']:.0f}%  within 10% {100 * f['within_10pct']:.0f}%")
    if rep.calibration and "a" in rep.calibration:
        from hwnas.latency.model import calibration_terms

        cal = rep.calibration
        say(f"calibration ({cal.get('mode', 'linear')}): measured = {cal['a']:.4f} x table sum {cal['b']:+.4f} ms"
            + calibration_terms(cal))
        say("validation MAPE vs number k of end-to-end timings the calibration is fitted on "
            "(median / mean over random k-subsets):")
        for c in rep.calibration.get("curve", []):
            say(f"  k={c['k']:3d}: {c['val_mape_pct_median']:6.1f}% / {c['val_mape_pct_mean']:7.1f}%  "
                f"(std {c['val_mape_pct_std']:.1f}, within 10% {100 * c['val_within_10pct_mean']:.0f}%, {c['draws']} draws)")

    if not args.no_docs:
        text = "\n".join(f"- {ln.strip()}" if not ln.startswith("  ") else f"  - {ln.strip()}" for ln in lines)
        print(f"wrote {write_section('profiling.md', 'profile_fidelity', text)}")


if __name__ == "__main__":
    main()
