"""Profile a device: time every distinct operation of a space, then whole architectures
end to end to calibrate and validate the table (hwnas-profile's work, without Hydra)."""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import HwnasError
from hwnas.latency.fidelity import calibration_curve, fidelity, fidelity_interval
from hwnas.latency.model import (
    DEFAULT_CALIBRATION,
    KERNEL_COSTS,
    NOOP,
    LatencyModel,
    apply_calibration,
    fit,
    fit_linear_positive,
    overhead_specs,
    resolve_mode,
    table_sum_rule,
)
from hwnas.latency.table import LatencyTable
from hwnas.latency.verdict import verdict
from hwnas.onnx_io import export_onnx
from hwnas.profiling.runners.base import Runner
from hwnas.timing import MAX_RETIMES, RETIME_REL_IQR, ROUNDS, ReferenceClock
from hwnas.seeding import seeded
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.base import sample_distinct as sample_archs  # noqa: F401  (the profile's draw)


@dataclass
class ProfileReport:
    """What one profile run did; printed by the app, used by benchmarks/profile_fidelity.py."""

    path: Path
    n_ops: int
    ops_measured: int
    e2e_measured: int
    timed_runs: int  # timed model runs this session (warm-up excluded)
    seconds: float
    op_seconds: float
    e2e_seconds: float
    calibration: dict | None = None
    validation: dict | None = None
    e2e_mean_ms: float | None = None
    extra: dict = field(default_factory=dict)


def _seeded(build, seed: int):
    # Same spec + seed -> same weights, and the caller's RNG is untouched.
    with seeded(seed):
        return build()


CHAIN = 8  # copies of a shape-preserving op timed in a row to get its marginal in-graph cost


def _op(space: SearchSpace, spec, seed: int, copies: int = 1):
    if spec.op == NOOP:  # the per-call overhead probe (see latency_model.py)
        return torch.nn.Identity(), (spec.c_in, spec.h, spec.w)
    module, shape = _seeded(lambda: space.op_module(spec), seed)  # seeded init
    if copies > 1:
        module = _seeded(lambda: torch.nn.Sequential(*(space.op_module(spec)[0] for _ in range(copies))), seed)
    return module.eval(), shape


def chainable(space: SearchSpace, spec) -> bool:
    """Whether the op maps its input shape to itself, so copies of it can run back to back."""
    if spec.op == NOOP:
        return False
    module, shape = _op(space, spec, 0)
    with torch.no_grad():
        return tuple(module(torch.zeros(1, *shape)).shape) == (1, *shape)


def export_op(space: SearchSpace, spec, path: Path, batch: int = 1, seed: int = 0, copies: int = 1) -> tuple[int, ...]:
    """Export `spec` alone (or `copies` of it in a row) to `path`, checked by onnx's checker;
    returns the input shape with batch."""
    module, shape = _op(space, spec, seed, copies)
    export_onnx(module, torch.zeros(batch, *shape), path, dynamic_batch=False)
    return (batch, *shape)


def export_arch(space: SearchSpace, arch, dataset: str, path: Path, batch: int = 1, seed: int = 0) -> tuple[int, ...]:
    """Export the whole network of `arch` to `path`; returns the input shape with batch."""
    shape = tuple(space.input_shape(dataset))
    model = _seeded(lambda: space.build_for(arch, dataset), seed).eval()
    export_onnx(model, torch.zeros(batch, *shape), path, dynamic_batch=False)
    return (batch, *shape)


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    # tqdm shows elapsed time and the ETA from the mean time per item so far.
    return tqdm(total=total, desc=desc, unit="model", disable=not progress or total == 0, file=sys.stderr,
                leave=False)


BATCH = 8  # ops (or architectures) timed interleaved together; the table is saved after each batch


def profile_ops(space, dataset: str, runner: Runner, table: LatencyTable, work: Path, seed: int = 0,
                progress: bool = True, clock: "Clock | None" = None) -> tuple[int, int]:
    """Time every distinct op of `space` missing from `table`, BATCH at a time interleaved in rounds
    (Runner.time_many); saves after each batch.

    Returns (ops measured, models timed: an op alone and, where chainable, its chain)."""
    ops = space.distinct_ops(dataset)
    todo = table.missing([*ops, *overhead_specs(ops, tuple(space.input_shape(dataset)))])
    models = 0
    with _bar(len(todo), "operations", progress) as bar:
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            files, owner = [], []
            for j, spec in enumerate(batch):
                path = work / f"op{j}.onnx"
                files.append((path, export_op(space, spec, path, runner.settings.batch, seed)))
                owner.append((j, False))
                if chainable(space, spec):
                    # Alone, an op pays a runtime call and its input/output handling; CHAIN copies
                    # back to back give its marginal cost inside a graph: (t_chain - t_single) / (CHAIN - 1).
                    cpath = work / f"op{j}.chain.onnx"
                    files.append((cpath, export_op(space, spec, cpath, runner.settings.batch, seed, copies=CHAIN)))
                    owner.append((j, True))
            timed = runner.time_many(files, **(clock.kwargs() if clock else {}))
            single, chain, extra = {}, {}, {}
            for (j, is_chain), (t, x) in zip(owner, timed):
                (chain if is_chain else single)[j] = t
                extra.setdefault(j, {})["chain_retimed" if is_chain else "retimed"] = x["retimed"]
                if not is_chain and "speed" in x:
                    extra[j].update(raw_median_ms=x["raw_median_ms"], speed=x["speed"])
            for j, spec in enumerate(batch):
                table.add(spec, single[j], chain.get(j), CHAIN)
                table.entries[spec.key].update(extra[j])
            models += len(files)
            table.save()
            for path, _ in files:
                path.unlink(missing_ok=True)
            bar.update(len(batch))
    return len(todo), models


def time_archs(space, dataset: str, runner: Runner, table: LatencyTable, archs, work: Path, seed: int = 0,
               progress: bool = True, clock: "Clock | None" = None, recheck: bool = False,
               kept: dict | None = None) -> int:
    """Time whole architectures end to end (those not yet in table.e2e), BATCH at a time
    interleaved in rounds; saves after each batch. Each timing also records how much the medians
    of its two interleaved halves differ (split_half_rel_diff).

    recheck=True times `archs` (already timed) once more, in a batch of their own, minutes after
    their first timing: e2e[arch]["recheck_median_ms"], the noise ceiling of measure_noise.
    `kept`: {str(arch): None} of architectures to be re-checked; the first pass stores their
    exported ONNX bytes and input shape there and the re-check reuses them (an export costs
    about half a timing), holding them in memory, not on a temporary disk that may be small."""
    if recheck:
        todo = [a for a in archs if str(a) in table.e2e and "recheck_median_ms" not in table.e2e[str(a)]]
    else:
        todo = [a for a in archs if str(a) not in table.e2e]
    with _bar(len(todo), "re-check" if recheck else "end-to-end", progress) as bar:
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            files = []
            for j, arch in enumerate(batch):
                path = work / f"arch{j}.onnx"
                if kept and kept.get(str(arch)):
                    onnx_bytes, shape = kept[str(arch)]
                    path.write_bytes(onnx_bytes)
                else:
                    shape = export_arch(space, arch, dataset, path, runner.settings.batch, seed)
                    if kept is not None and str(arch) in kept:
                        kept[str(arch)] = (path.read_bytes(), shape)
                files.append((path, shape))
            for arch, (t, x) in zip(batch, runner.time_many(files, **(clock.kwargs() if clock else {}))):
                if recheck:
                    table.e2e[str(arch)]["recheck_median_ms"] = t.median_ms
                    continue
                table.add_e2e(str(arch), t)
                table.e2e[str(arch)].update(split_half_rel_diff=x["split_half_rel_diff"], retimed=x["retimed"],
                                            **{k: x[k] for k in ("raw_median_ms", "speed") if k in x})
            table.save()
            for path, _ in files:
                path.unlink(missing_ok=True)
            bar.update(len(batch))
    return len(todo)


class Clock:
    """The profile's reference clock (timing.ReferenceClock) and its two reference architectures,
    exported on the first batch that times something (a complete table resumed times nothing and
    builds nothing); their levels are kept in the table (`clock`), so a resumed profile keeps its units."""

    def __init__(self, space, dataset: str, runner: Runner, table: LatencyTable, work: Path, seed: int):
        self.space, self.dataset, self.runner, self.table, self.work, self.seed = space, dataset, runner, table, work, seed
        self.archs = self.references = self.clock = None

    def kwargs(self) -> dict:
        if self.clock is None:
            self.archs = reference_archs(self.space, self.dataset, self.seed)
            self.references = []
            for name, arch in zip(("light", "heavy"), self.archs):
                path = self.work / f"reference_{name}.onnx"
                self.references.append((path, export_arch(self.space, arch, self.dataset, path,
                                                          self.runner.settings.batch, self.seed)))
            stored = self.table.clock or {}
            same = stored.get("references") == [str(a) for a in self.archs]
            self.clock = ReferenceClock(levels_ms=stored.get("levels_ms") if same else None)
        return {"references": self.references, "clock": self.clock}

    def store(self) -> None:
        if self.clock is None:  # nothing was timed: the table's clock stands
            return
        drift = self.clock.drift()
        self.table.clock = {"references": [str(a) for a in self.archs], "levels_ms": self.clock.levels_ms,
                            "drift": drift if drift is not None else (self.table.clock or {}).get("drift"),
                            "method": "every timing scaled by the speed of its round, read off a light and a heavy "
                                      "reference architecture timed first in each round and interpolated at the "
                                      "model's own level (hwnas/timing.py: ReferenceClock)"}


def reference_candidates(space, dataset: str, seed: int, draws: int = 9) -> list:
    """`draws` architectures drawn apart from the calibration/validation ones, fewest parameters first."""
    def params(arch) -> int:
        return sum(p.numel() for p in space.build_for(arch, dataset).parameters())

    return sorted(sample_archs(space, draws, seed + REFERENCE_SEED), key=params)


def reference_archs(space, dataset: str, seed: int, draws: int = 9) -> tuple:
    """The references of the profile's clock: of the reference candidates, those of the fewest
    and the most parameters: a light, memory-bound model that another tenant on the cores barely
    slows, and a convolution-heavy one it slows most (docs/latency.md); the models between them
    are scaled in between."""
    ranked = reference_candidates(space, dataset, seed, draws)
    return ranked[0], ranked[-1]


REFERENCE_SEED = 7919  # the reference architectures are drawn apart from the calibration/validation ones


def measure_noise(table: LatencyTable) -> dict:
    """How noisy the machine was, from the stored timings: median IQR/median of the op entries and
    of the end-to-end timings, and the median split-half difference of the end-to-end timings (two
    interleaved halves of one timing: no predictor validates better than this)."""
    def med(values):
        v = [x for x in values if x is not None]
        return float(np.median(v)) if v else None

    drift = (table.clock or {}).get("drift") or {}
    pairs = np.array([(e["median_ms"], e["recheck_median_ms"]) for e in table.e2e.values() if "recheck_median_ms" in e])
    rechecks = [abs(b / a - 1) for a, b in pairs]
    return {"ops_rel_iqr_median": med(e["iqr_ms"] / e["median_ms"] for e in table.entries.values()),
            "e2e_recheck_rel_diff_median": med(rechecks),
            "e2e_recheck_within_10pct": float(np.mean(np.array(rechecks) <= 0.10)) if rechecks else None,
            "e2e_rechecked": len(rechecks),
            # how alike two timings order the architectures: a table validates against their mean
            "e2e_recheck_kendall_tau": fidelity(pairs[:, 1], pairs[:, 0])["kendall_tau"] if len(pairs) >= 3 else None,
            "machine_speed_p10_p90": [drift["speed_p10"], drift["speed_p90"]] if drift else None,
            "e2e_rel_iqr_median": med(e["iqr_ms"] / e["median_ms"] for e in table.e2e.values()),
            "e2e_split_half_rel_diff_median": med(e.get("split_half_rel_diff") for e in table.e2e.values()),
            "ops_retimed": int(sum(e.get("retimed", 0) + e.get("chain_retimed", 0) for e in table.entries.values())),
            "e2e_retimed": int(sum(e.get("retimed", 0) for e in table.e2e.values())),
            "rounds": ROUNDS, "retime_rel_iqr": RETIME_REL_IQR, "max_retimes": MAX_RETIMES}


def calibrate_and_validate(space, dataset: str, table: LatencyTable, cal_archs, val_archs,
                           plot_path: Path | None = None, mode: str = DEFAULT_CALIBRATION) -> None:
    """Fit the calibration (`mode`: auto | linear | per_op | layout, latency_model.py) on `cal_archs`, score raw and
    calibrated predictions on the disjoint `val_archs`; both stored in the table (calibration,
    validation). Uses only the table's entries and stored end-to-end timings: nothing is timed."""
    missing = [str(a) for a in [*cal_archs, *val_archs] if str(a) not in table.e2e]
    if missing:
        made = {k: (table.settings or {}).get(k) for k in ("calibrate", "validate")}
        hint = (f"it was profiled with calibrate={made['calibrate']} validate={made['validate']}: pass those, or "
                if None not in made.values() and (made["calibrate"], made["validate"]) != (len(cal_archs), len(val_archs))
                else "")
        raise HwnasError(f"latency table {table.path} has no end-to-end timing of {len(missing)} of the "
                         f"architectures to calibrate/validate on (e.g. {missing[0]}); {hint}run hwnas-profile "
                         f"without recalibrate=true to time them")
    requested, mode = mode, resolve_mode(mode, space, table.fingerprint)
    table.calibration = table.validation = None
    rule = table_sum_rule(space, table.fingerprint)
    model = LatencyModel(table, space, dataset, sum_rule=rule)  # uncalibrated: table sums and class costs
    kernels = (lambda archs: model.runtime_kernels(archs)) if mode == "layout" else (lambda archs: None)  # noqa: E731
    measured = lambda archs: np.array([table.measured_ms(a) for a in archs])  # noqa: E731
    cal = None
    if cal_archs:
        cs, cx, cr, cm = model.table_sum(cal_archs), model.class_costs(cal_archs), kernels(cal_archs), measured(cal_archs)
        have_val = len(val_archs) >= 2
        if have_val:
            vs, vx, vr, vm = model.table_sum(val_archs), model.class_costs(val_archs), kernels(val_archs), measured(val_archs)
        cal, selection = select_calibration(model, mode, cs, cx, cr, cm, *((vs, vx, vr, vm) if have_val else ()))
        method = {"linear": "least squares measured ~ a*sum + b, bounded so no architecture of the space is predicted "
                            f"below {FLOOR_FRACTION:g} x the fastest calibration latency",
                  "per_op": "measured ~ a*sum + sum_c (factor_c - a)*class cost_c + b, factors ridge-shrunk toward a, "
                            "lambda by leave-one-out CV in the calibration set",
                  "layout": "measured ~ a*sum + reorder_ms*(onnxruntime NCHWc layout conversions) + relu_ms*(unfused "
                            "ReLUs) + add_ms*(unfused Adds) + b, the kernel costs ridge-shrunk toward 0 (lambda by "
                            "leave-one-out CV in the calibration set), a negative one dropped"}[cal["mode"]]
        if selection["selected"] == "raw":
            method = "none: the raw table sum (a=1, b=0) validated best"
        linear = selection["linear"]
        table.calibration = {**cal, "table_sum": rule, "requested_mode": requested, "n": len(cal_archs), "method": method,
                             "linear": {"a": linear["a"], "b": linear["b"]}, "archs": [str(x) for x in cal_archs],
                             "selected": selection["selected"], "selection": selection["why"],
                             "candidates": selection["candidates"], "min_prediction_ms": selection["min_prediction_ms"],
                             "fit": fidelity(apply_calibration(cal, cs, cx, kernels=cr), cm) if len(cs) > 2 else None}
    else:  # no calibration: the table still says how its raw sum counts ops
        table.calibration = {"table_sum": rule}
    if val_archs:
        vs, vx, vr, vm = model.table_sum(val_archs), model.class_costs(val_archs), kernels(val_archs), measured(val_archs)
        pred = apply_calibration(cal, vs, vx, kernels=vr) if cal is not None else None
        table.validation = {"n": len(val_archs), "archs": [str(x) for x in val_archs],
                            "disjoint_from_calibration": not set(map(str, val_archs)) & set(map(str, cal_archs)),
                            "truth": "mean of two end-to-end timings minutes apart where re-checked, else one",
                            "raw": fidelity(vs, vm) if len(vs) >= 2 else None,
                            "calibrated": fidelity(pred, vm) if pred is not None and len(vs) >= 2 else None,
                            "calibration_mode": cal["mode"] if cal is not None else None,
                            "table_sum_ms": vs.tolist(), "measured_ms": vm.tolist(),
                            "predicted_ms": pred.tolist() if pred is not None else None}
        if len(vs) >= 2:  # how sure the figures the verdict reads are, from n architectures alone
            table.validation["interval"] = fidelity_interval(pred if pred is not None else vs, vm)
        if cal is not None and cal["mode"] != "linear":
            lin = table.calibration["linear"]
            table.validation["calibrated_linear"] = fidelity(lin["a"] * vs + lin["b"], vm) if len(vs) >= 2 else None
        if cal_archs:
            table.calibration["curve"] = calibration_curve(cs, cm, vs, vm, mode=mode, cal_classes=cx, val_classes=vx,
                                                           cal_kernels=cr, val_kernels=vr, classes=model.classes)
            if mode != "linear":
                table.calibration["curve_linear"] = calibration_curve(cs, cm, vs, vm)
        if plot_path is not None and len(vs) >= 2:
            from hwnas.profiling.plot import plot_validation

            plot_validation(plot_path, vs, vm, pred, table.device, table.validation)
    table.noise = measure_noise(table)
    table.verdict = verdict(table.validation, table.noise)
    table.save()


FLOOR_FRACTION = 0.1  # no prediction below this share of the fastest calibration architecture's latency


def select_calibration(model: LatencyModel, mode: str, cs, cx, cr, cm, vs=None, vx=None, vr=None, vm=None):
    """The calibration to store, and why: candidates `mode`'s fit (when not linear), the positive
    linear fit, and the raw table sum (a=1, b=0). A candidate that predicts <= 0 ms for any
    architecture of the space (checked over all of it where it can be enumerated), or that gives
    an op class a negative cost, is refused; of the rest the one with the lowest validation MAPE
    on the held-out architectures is kept, the more detailed one on a tie (without validation
    architectures: the first accepted)."""
    feats = model.space_features()
    s_min = float(feats[1].min()) if feats is not None else float(np.min(np.r_[cs, vs if vs is not None else []]))
    linear = fit_linear_positive(cs, cm, s_min, FLOOR_FRACTION * float(np.min(cm)))
    cands = []
    if mode != "linear":
        cands.append((mode, fit(mode, cs, cx, cm, cr, model.classes)))
    cands += [("linear", linear), ("raw", {"mode": "linear", "a": 1.0, "b": 0.0})]
    info, best, best_mape = {}, None, np.inf
    for name, cal in cands:
        low = model.min_prediction(cal)
        rec = {"mode": cal["mode"], "min_prediction_ms": None if low is None else low[0], "refused": None}
        if low is not None and low[0] <= 0:
            rec["refused"] = f"predicts {low[0]:.4g} ms for an architecture of the space"
        elif (cal["a"] <= 0 or any(f < 0 for f in (cal.get("factors") or {}).values())
              or min(cal.get(k, 0.0) for k in KERNEL_COSTS) < 0):
            rec["refused"] = "gives operations a negative cost (slope, class factor or per-kernel cost < 0)"
        if vs is not None:
            f = fidelity(apply_calibration(cal, vs, vx, kernels=vr), vm)
            rec.update(val_mape_pct=f["mape_pct"], val_kendall_tau=f["kendall_tau"])
        info[name] = rec
        if rec["refused"] is None:
            score = rec.get("val_mape_pct", 0.0)
            if best is None or score < best_mape:
                best, best_mape = (name, cal), score
    name, cal = best  # the raw sum of positive entries is never refused
    first = cands[0][0]
    if name == first:
        why = f"{name}: " + ("lowest validation MAPE" if vs is not None else "no validation architectures to compare")
    else:
        refused = info[first]["refused"]
        why = (f"{name} instead of {first}: {first} {refused}" if refused else
               f"{name} instead of {first}: it validates better (MAPE {info[name]['val_mape_pct']:.1f}% vs "
               f"{info[first]['val_mape_pct']:.1f}%)")
    if vs is not None:
        why += " (validation MAPE: " + ", ".join(
            f"{k} " + ("refused" if c["refused"] else f"{c['val_mape_pct']:.1f}%") for k, c in info.items()) + ")"
    return cal, {"selected": name, "why": why, "candidates": info, "linear": linear,
                 "min_prediction_ms": info[name]["min_prediction_ms"]}


def profile(space, dataset: str, runner: Runner, table: LatencyTable, calibrate: int = 10, validate: int = 30,
            e2e_repeats: int | None = None, seed: int = 0, progress: bool = True,
            plot_path: Path | None = None, calibration: str = DEFAULT_CALIBRATION, clock: bool = True
            ) -> ProfileReport:
    """The whole profile: ops, end-to-end timings, calibration, validation (resumable). `clock`:
    time a reference architecture in every round and scale each round by its speed (Clock)."""
    ok, why = runner.available()
    if not ok:
        raise HwnasError(f"runner {runner.name} cannot run here: {why}")
    if calibrate < 0 or validate < 0 or calibrate == 1:
        raise HwnasError(f"calibrate={calibrate} and validate={validate} must be >= 0 (calibrate 0 or >= 2)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-profile-") as tmp:
        work = Path(tmp)
        clock = Clock(space, dataset, runner, table, work, seed) if clock and runner.reference_clock else None
        n_ops, op_models = profile_ops(space, dataset, runner, table, work, seed, progress, clock)
        t_ops = time.perf_counter() - t0
        archs = sample_archs(space, calibrate + validate, seed)
        cal, val = archs[:calibrate], archs[calibrate:]
        e2e_runner = runner
        if e2e_repeats is not None and e2e_repeats != runner.settings.repeats:
            e2e_runner = type(runner)(replace(runner.settings, repeats=e2e_repeats), **runner.options)
        t1 = time.perf_counter()
        kept = dict.fromkeys(map(str, val))
        n_e2e = time_archs(space, dataset, e2e_runner, table, archs, work, seed, progress, clock, kept=kept)
        # What one architecture costs exported and timed once: the estimate of timing them all
        n_first, t_first = n_e2e, time.perf_counter() - t1
        # Every validation architecture timed again, minutes later: the noise ceiling, and a truth
        # (the mean of the two) with half one timing's noise to validate against.
        n_e2e += time_archs(space, dataset, e2e_runner, table, val, work, seed, progress, clock, recheck=True,
                            kept=kept)
        t_e2e = time.perf_counter() - t1
        if clock is not None:
            clock.store()
    timed = op_models * runner.settings.repeats + n_e2e * e2e_runner.settings.repeats
    for key, val_ in (("op_seconds", t_ops), ("op_models", op_models), ("op_timed_runs", op_models * runner.settings.repeats),
                      ("e2e_seconds", t_e2e), ("e2e_models", n_e2e), ("e2e_timed_runs", n_e2e * e2e_runner.settings.repeats),
                      ("e2e_first_seconds", t_first), ("e2e_first_models", n_first)):
        table.cost[key] = table.cost.get(key, 0) + val_
    calibrate_and_validate(space, dataset, table, cal, val, plot_path, calibration)
    e2e = [table.e2e[str(a)]["median_ms"] for a in archs]
    return ProfileReport(table.path, len(table), n_ops, n_e2e, timed, time.perf_counter() - t0, t_ops, t_e2e,
                         table.calibration, table.validation, float(np.mean(e2e)) if e2e else None)


def recalibrate(space, dataset: str, table: LatencyTable, calibrate: int, validate: int, seed: int = 0,
                plot_path: Path | None = None, calibration: str = DEFAULT_CALIBRATION) -> ProfileReport:
    """Refit calibration and validation from the table's stored entries and end-to-end timings
    (the architectures `profile` draws for calibrate/validate/seed); times nothing."""
    if calibrate < 0 or validate < 0 or calibrate == 1:
        raise HwnasError(f"calibrate={calibrate} and validate={validate} must be >= 0 (calibrate 0 or >= 2)")
    t0 = time.perf_counter()
    archs = sample_archs(space, calibrate + validate, seed)
    missing = space.distinct_ops(dataset)
    if table.missing(missing):
        raise HwnasError(f"latency table {table.path} lacks {len(table.missing(missing))} operations; run "
                         f"hwnas-profile without recalibrate=true to measure them")
    calibrate_and_validate(space, dataset, table, archs[:calibrate], archs[calibrate:], plot_path, calibration)
    e2e = [table.e2e[str(a)]["median_ms"] for a in archs]
    return ProfileReport(table.path, len(table), 0, 0, 0, time.perf_counter() - t0, 0.0, 0.0,
                         table.calibration, table.validation, float(np.mean(e2e)) if e2e else None)
