"""`hwnas-export`'s work: build, export, check, verify and measure each selected architecture.

One model at a time: torch network (seeded init or a checkpoint) -> ONNX (checked and
shape-inferred) -> optional onnxslim -> onnxruntime vs torch at several batch sizes ->
CPU latency on this machine -> TensorRT engines where possible. A model that fails
verification is moved to `<out>/failed/` and marked failed in the manifest; the command
then exits non-zero after writing the manifest and report.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hwnas
from hwnas.errors import HwnasError
from hwnas.export.checks import (
    count_macs,
    count_params,
    describe_io,
    simplify_onnx,
    time_onnx,
    verify_onnx,
)
from hwnas.export.config import SELECT_MODES, ExportConfig
from hwnas.export import outdir
from hwnas.export.engines import tensorrt_engines
from hwnas.export.run import resolve_archs, select_rows
from hwnas.export.trained import TrainedRun, accuracy_check, is_trained
from hwnas.rundir import RunDir, load_run
from hwnas.io import sha256_file, write_json_atomic, write_text_atomic
from hwnas.onnx_io import INPUT_NAME, OUTPUT_NAME, export_onnx, random_input
from hwnas.seeding import seeded

MANIFEST_SCHEMA = 1
TRAINED_NOTE = ("the weights the search trained (evaluator=train); accuracy.onnx_test_accuracy is the test "
                "accuracy of the exported file, run by onnxruntime")
WEIGHTS_NOTE = ("NAS-Bench-201 accuracies are those of the trained networks; randomly initialised "
                "weights give the right graph, size and latency but not that accuracy.")


def profiled_device_latency(run_device_name: str, arch: Any, table: str | None = None,
                            kind: str | None = "profiled", space=None) -> float | None:
    """Latency (ms) of `arch` from a latency table profiled by hwnas on `run_device_name`.

    Only for a run whose device kind is `profiled`: the table is `table` (the run's device.path)
    or latency_tables/<device>.json (written by hwnas-profile). None for any other kind (a public
    benchmark device such as raspi4 is not a profiled table, whatever lies in latency_tables/) or
    when there is no table; the manifest then says why `device_latency_ms` is null. `space`: the
    run's own (its width decides the networks); default: the table's space at its defaults.
    """
    if kind != "profiled":
        return None
    from hwnas.latency.profiled import load_model
    from hwnas.latency.table import table_path
    from hwnas.spaces import SPACES

    path = Path(os.path.expanduser(table)) if table else table_path(run_device_name)
    if not path.is_file():
        return None
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _PROFILED_MODELS:
        from hwnas.latency.table import LatencyTable

        space_name = LatencyTable.load(path).fingerprint.get("space", "nb201")
        if space is None or space.name != space_name:
            space = SPACES.get(space_name)()
        _PROFILED_MODELS[key] = load_model(path, space, check_machine=False)
    return float(_PROFILED_MODELS[key].predict([arch])[0])


def table_timing(run_device_name: str, table: str | None = None, kind: str | None = "profiled") -> dict | None:
    """The onnxruntime settings (threads, inter_op_threads, graph_optimization) of the run's
    profiled table when it was measured by ort_cpu on this machine (same processor, runtime and
    versions), so the export's measured latency compares with the table's; else None (the
    export's own threads apply)."""
    if kind != "profiled":
        return None
    from hwnas.latency.profiled import this_machine_fingerprint
    from hwnas.latency.table import LatencyTable, fingerprint_diff, table_path

    path = Path(os.path.expanduser(table)) if table else table_path(run_device_name)
    if not path.is_file():
        return None
    t = LatencyTable.load(path)
    fp = t.fingerprint
    here = this_machine_fingerprint(t) if fp.get("runner") == "ort_cpu" else None
    if here is None or fingerprint_diff(fp, here):
        return None
    return {"threads": int(fp.get("intra_op_threads", 1)), "inter_op_threads": int(fp.get("inter_op_threads", 1)),
            "graph_optimization": str(fp.get("graph_optimization", "all")), "table": str(path)}


_PROFILED_MODELS: dict = {}  # (table path, mtime) -> LatencyModel, so a batch of exports loads it once


class ExportFailed(HwnasError):
    """Some models failed; the export (manifest, report, failed/) was published all the same."""

    def __init__(self, message: str, manifest: dict, out: Path):
        super().__init__(message)
        self.manifest, self.out = manifest, out


@dataclass
class Target:
    """One architecture to export, with what the run predicted for it."""

    arch: Any
    index: int | None
    predicted: dict | None

    @property
    def arch_str(self) -> str:
        return str(self.arch)


def validate_config(cfg: ExportConfig) -> None:
    if cfg.select not in SELECT_MODES:
        raise HwnasError(f"unknown select={cfg.select!r}; valid: {', '.join(SELECT_MODES)} (or archs=[...])")
    if cfg.exporter not in ("torchscript", "dynamo"):
        raise HwnasError(f"unknown exporter={cfg.exporter!r}; valid: torchscript, dynamo")
    if not 7 <= cfg.opset <= 23:
        raise HwnasError(f"opset={cfg.opset} is outside 7..23")
    if cfg.batch is not None and cfg.batch < 1:
        raise HwnasError(f"batch={cfg.batch} must be >= 1 (or null for a dynamic batch axis)")
    if not cfg.verify_batches or any(b < 1 for b in cfg.verify_batches):
        raise HwnasError(f"verify_batches={list(cfg.verify_batches)} must list batch sizes >= 1")
    if cfg.atol < 0 or cfg.rtol < 0 or cfg.trt_atol < 0 or cfg.trt_rtol < 0:
        raise HwnasError("tolerances (atol, rtol, trt_atol, trt_rtol) must be >= 0")
    if cfg.latency_repeats < 1 or cfg.latency_warmup < 0:
        raise HwnasError("latency_repeats must be >= 1 and latency_warmup >= 0")
    if cfg.threads < 1:
        raise HwnasError(f"threads={cfg.threads} must be >= 1")
    if not cfg.accuracy_tol >= 0:
        raise HwnasError(f"accuracy_tol={cfg.accuracy_tol} must be >= 0 (percentage points)")
    if cfg.weights is not None and not Path(cfg.weights).is_file():
        raise HwnasError(f"weights={cfg.weights}: no such file; pass a torch state_dict checkpoint or drop weights")


def make_space(run: RunDir, data_dir: str | None):
    from hwnas.spaces import make_space as make

    return make(run.config["space"], data_dir)


def _index_of(space, arch, row_index: Any) -> int | None:
    if row_index is not None and not (isinstance(row_index, float) and np.isnan(row_index)):
        return int(row_index)
    try:
        return space.index(arch)
    except HwnasError:  # no benchmark data here: the index is informative only
        return None


def choose_targets(run: RunDir, space, cfg: ExportConfig) -> tuple[list[Target], dict]:
    """What to export and how it was chosen (the manifest's `selection`)."""
    if cfg.archs is not None:
        archs = resolve_archs(space, list(cfg.archs))
        targets = []
        for a in archs:
            pred = run.predicted(str(a))
            targets.append(Target(a, _index_of(space, a, (pred or {}).get("index")), pred))
        return targets, {"mode": "archs", "requested": list(cfg.archs), "n_front": len(run.pareto)}
    rows = select_rows(run, cfg.select, cfg.latency_budget_ms)
    targets = []
    for r in rows:
        row = run.pareto.iloc[r]
        try:
            arch = space.parse(row["arch"])
        except HwnasError as exc:
            raise HwnasError(f"{run.path / 'pareto.csv'}, line {r + 2}: {exc}") from None
        targets.append(Target(arch, _index_of(space, arch, row.get("index")), run.predicted(row["arch"])))
    sel = {"mode": cfg.select, "n_front": len(run.pareto), "rows": rows}
    if cfg.select == "best_under_budget":
        sel["latency_budget_ms"] = cfg.latency_budget_ms if cfg.latency_budget_ms is not None else run.latency_budget
    return targets, sel


def model_name(space_name: str, target: Target) -> str:
    if target.index is not None:
        return f"{space_name}_{target.index:05d}"
    return f"{space_name}_{hashlib.sha1(target.arch_str.encode()).hexdigest()[:10]}"


def build_model(space, arch, num_classes: int, input_shape: tuple[int, ...], cfg: ExportConfig,
                state: dict | None = None, source: str | None = None) -> torch.nn.Module:
    """The network with seeded fresh weights, or a checkpoint's: `state` (the run's own, from
    `source`), else the file given as weights=."""
    # Same arch + seed -> same weights, whatever the export order; the caller's RNG is untouched.
    with seeded(cfg.seed):
        model = space.build(arch, num_classes, in_channels=input_shape[0], input_size=tuple(input_shape[1:]))
    if state is None and cfg.weights is not None:
        source = f"weights={cfg.weights}"
        try:
            state = torch.load(cfg.weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise HwnasError(f"{source}: not a torch checkpoint ({type(exc).__name__}: {exc})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise HwnasError(f"{source} do not fit {arch}: {first}") from None
    return model.eval()


def weights_label(cfg: ExportConfig, trained: bool = False) -> str:
    if cfg.weights is None and trained:
        return "trained by the search (its checkpoints/)"
    if cfg.weights is None:
        return f"random-init (seed {cfg.seed})"
    return f"checkpoint {cfg.weights} (sha256 {sha256_file(cfg.weights)})"


def tool_versions() -> dict:
    import onnx
    import onnxruntime

    versions = {"hwnas": hwnas.__version__, "python": platform.python_version(), "torch": torch.__version__,
                "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}
    for name in ("onnxslim", "tensorrt"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:
            versions[name] = None
    return versions


def machine_info() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    # Frequency scaling skews CPU latency; record it where the kernel exposes it.
    info["cpu_governor"] = governor.read_text().strip() if governor.is_file() else None
    return info


def device_latency(device_name: str, ms: float | None) -> tuple[float | None, str]:
    """(device_latency_ms, its note): a prediction that is not a positive latency is not recorded."""
    if ms is None:
        return None, (f"no hwnas-profiled latency table for device {device_name!r}; "
                      f"see predicted.latency_ms for the run's figure")
    if not ms > 0:  # also NaN: a miscalibrated table must not hand out an impossible latency
        return None, (f"the profiled latency table for {device_name} predicts {ms:.3g} ms for this "
                      f"architecture, which is not a latency; not recorded (re-profile the device or "
                      f"recalibrate its table)")
    return ms, f"profiled latency table for {device_name}"


# --- one model --------------------------------------------------------------------------------

def export_one(target: Target, space, dataset: str, device_name: str, out: Path, cfg: ExportConfig,
               device_table: str | None = None, device_kind: str | None = "profiled", trained=None) -> dict:
    """Export, verify and measure one architecture; returns its manifest entry (never raises
    HwnasError for a model-level failure: the entry says status "failed" and why).

    `trained` (a TrainedRun): the network gets the search's trained weights, and its test
    accuracy is measured again on the ONNX file."""
    name = model_name(space.name, target)
    onnx_path = out / f"{name}.onnx"
    input_shape = trained.input_shape if trained is not None else tuple(space.input_shape(dataset))
    num_classes = trained.num_classes if trained is not None else space.num_classes(dataset)
    entry: dict[str, Any] = {
        "name": name, "arch": target.arch_str, "index": target.index, "status": "ok", "error": None,
        "file": onnx_path.name, "predicted": target.predicted,
        "is_connected": bool(getattr(target.arch, "is_connected", lambda: True)()),
    }
    # Every entry has every key (null where a failed model never got that far): one schema.
    for key in ("params", "macs", "flops", "flops_note", "simplify", "verification", "opset", "io", "size_bytes",
                "sha256", "measured_latency_ms", "tensorrt", "checkpoint", "accuracy"):
        entry[key] = None
    entry["device_latency_ms"], entry["device_latency_note"] = device_latency(
        device_name, profiled_device_latency(device_name, target.arch, device_table, device_kind, space))
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    try:
        state = source = None
        if trained is not None and cfg.weights is None:
            path, ckpt = trained.checkpoint(target.arch_str)
            state, source = ckpt["state_dict"], f"checkpoint {path}"
            entry["checkpoint"] = {"file": str(path), "sha256": sha256_file(path),
                                   "val_accuracy": ckpt["meta"].get("val_accuracy"),
                                   "test_accuracy": (target.predicted or {}).get("test_accuracy")}
        model = build_model(space, target.arch, num_classes, input_shape, cfg, state, source)
        entry["params"] = count_params(model)
        macs = count_macs(model, input_shape)
        entry.update(macs=macs, flops=2 * macs, flops_note="Conv2d + Linear multiply-accumulates, batch 1")

        t0 = time.perf_counter()
        example = torch.from_numpy(random_input(input_shape, cfg.batch or 1, cfg.seed))
        try:
            export_onnx(model, example, onnx_path, opset=cfg.opset, dynamic_batch=cfg.batch is None,
                           exporter=cfg.exporter)
        except HwnasError:
            raise
        except Exception as exc:  # the exporters raise many types; report, don't crash the batch
            raise HwnasError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        seconds["export"] = time.perf_counter() - t0
        entry["opset"] = cfg.opset
        entry["io"] = describe_io(onnx_path)

        if cfg.simplify:
            t0 = time.perf_counter()
            try:
                entry["simplify"] = simplify_onnx(onnx_path)
            except Exception as exc:  # keep the unsimplified (already checked) model
                entry["simplify"] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            seconds["simplify"] = time.perf_counter() - t0
        else:
            entry["simplify"] = {"status": "skipped", "reason": "simplify=false"}

        t0 = time.perf_counter()
        batches = tuple(cfg.verify_batches) if cfg.batch is None else (cfg.batch,)
        ver = verify_onnx(model, onnx_path, input_shape, batches=batches, atol=cfg.atol, rtol=cfg.rtol,
                             seed=cfg.seed, threads=cfg.threads)
        entry["verification"] = ver
        seconds["verify"] = time.perf_counter() - t0
        if not ver["passed"]:
            problems = [f"batch {b}: {r['error']}" for b, r in ver["batches"].items() if r.get("error")]
            ratio = ver["tol_ratio"]
            rel = ver["max_rel_err"]
            detail = "; ".join(problems) or (f"max abs err {ver['max_abs_err']:.3g}"
                                             + (f", max rel err {rel:.3g}" if rel is not None else "")
                                             + (f", {ratio:.3g}x the tolerance" if ratio is not None else ""))
            raise HwnasError(f"onnxruntime output differs from torch beyond atol={cfg.atol}, rtol={cfg.rtol} "
                             f"({detail})")

        entry["size_bytes"] = onnx_path.stat().st_size
        entry["sha256"] = sha256_file(onnx_path)

        if entry["checkpoint"] is not None:
            t0 = time.perf_counter()
            x, y = trained.test_split()
            acc = accuracy_check(model, onnx_path, x, y, cfg.threads, cfg.accuracy_tol, cfg.batch)
            entry["accuracy"] = acc
            seconds["accuracy"] = time.perf_counter() - t0
            if not acc["agree"]:
                raise HwnasError(f"test accuracy of the ONNX model ({acc['onnx_test_accuracy']:.2f}%) differs from "
                                 f"torch's ({acc['torch_test_accuracy']:.2f}%) by more than accuracy_tol="
                                 f"{cfg.accuracy_tol} points")

        t0 = time.perf_counter()
        same = table_timing(device_name, device_table, device_kind)
        # Timed by the profiler's ort_cpu runner; with the table's settings where the run's device
        # is a table profiled on this machine, so the two figures compare.
        lat = time_onnx(onnx_path, input_shape, batch=cfg.batch or 1, warmup=cfg.latency_warmup,
                        repeats=cfg.latency_repeats, seed=cfg.seed,
                        **({k: same[k] for k in ("threads", "inter_op_threads", "graph_optimization")}
                           if same else {"threads": cfg.threads}))
        lat["settings_of_table"] = same["table"] if same else None
        entry["measured_latency_ms"] = lat
        seconds["latency"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        entry["tensorrt"] = tensorrt_engines(onnx_path, input_shape, batches, cfg)
        seconds["tensorrt"] = time.perf_counter() - t0
    except HwnasError as exc:
        entry["status"], entry["error"] = "failed", str(exc)
        entry["file"] = _quarantine(onnx_path, out)
    entry["seconds"] = {k: round(v, 4) for k, v in {**seconds, "total": time.perf_counter() - t_all}.items()}
    return entry


def _quarantine(onnx_path: Path, out: Path) -> str | None:
    """Move a model that failed its checks out of the export folder's good set."""
    if not onnx_path.exists():
        return None
    failed_dir = out / "failed"
    failed_dir.mkdir(exist_ok=True)
    dest = failed_dir / onnx_path.name
    os.replace(onnx_path, dest)
    return str(dest.relative_to(out))


# --- the whole export ----------------------------------------------------------------------

def run_export(cfg: ExportConfig, config_text: str | None = None) -> dict:
    """Export the selected architectures of run `cfg.run`; returns the manifest.

    Everything is checked (run, space, every selected architecture) before anything is
    written; the export is built in a staging folder and replaces the previous one whole at
    the end (hwnas/export/outdir.py), so an interrupted export leaves the previous one as it
    was. `config_text`, when given, is saved beside the results as export_config.yaml.
    Raises HwnasError (after publishing manifest and report) when any model failed.
    """
    validate_config(cfg)
    run = load_run(cfg.run)
    # Resolved: `out=.` has a name to stage beside, and a symlinked out keeps its link.
    out = (Path(cfg.out).expanduser() if cfg.out else run.path / "export").resolve()
    data_dir = cfg.data_dir or run.summary.get("data_dir")
    if data_dir is not None and not Path(data_dir).is_dir():
        data_dir = None  # a run from another machine: fall back to $HWNAS_DATA_DIR
    space = make_space(run, data_dir)
    if not is_trained(run):
        space.input_shape(run.dataset)  # fails early on a dataset the space cannot build
    targets, selection = choose_targets(run, space, cfg)
    selection["n_selected"] = len(targets)
    trained = TrainedRun(run) if is_trained(run) else None
    if trained is not None and cfg.weights is None:
        for t in targets:  # before anything is written: every network must have its weights
            trained.checkpoint(t.arch_str)
    if cfg.weights is not None and len(targets) > 1:
        raise HwnasError(f"weights={cfg.weights} is one network's checkpoint but {len(targets)} architectures "
                         f"are selected; pick its architecture with archs=[...] (or select=knee)")

    outdir.recover(out)
    in_place = outdir.must_stage_inside(out, run.path)
    staging = outdir.begin(out, in_place)
    try:
        manifest = _export_into(staging, run, space, targets, selection, cfg, config_text, trained)
        outdir.publish(staging, out, {model_name(space.name, t) for t in targets}, in_place)
    except BaseException:  # Ctrl-C included: the previous export stays as it was
        outdir.abandon(staging)
        raise
    failed = [m for m in manifest["models"] if m["status"] != "ok"]
    trt_failed = [m for m in manifest["models"] if (m.get("tensorrt") or {}).get("status") == "failed"]
    if failed or trt_failed:
        items = [f"{m['name']} ({m['error']})" for m in failed] + [f"{m['name']} (TensorRT engine)" for m in trt_failed]
        names = "; ".join(items[:3]) + (f"; and {len(items) - 3} more" if len(items) > 3 else "")
        raise ExportFailed(f"{len(failed) + len(trt_failed)} of {len(manifest['models'])} exports failed: {names}; "
                           f"failed ONNX files moved to {out / 'failed'}; details in {out / 'manifest.json'}",
                           manifest, out)
    return manifest


def _export_into(folder: Path, run: RunDir, space, targets: list[Target], selection: dict, cfg: ExportConfig,
                 config_text: str | None, trained: TrainedRun | None = None) -> dict:
    """Export every target into `folder` and write the manifest, report and plot there
    (`trained`: the run's trained networks, when it trained them)."""
    from tqdm import tqdm

    from hwnas.export.report import write_front_plot, write_report

    dataset = run.dataset
    input_shape = trained.input_shape if trained is not None else space.input_shape(dataset)
    num_classes = trained.num_classes if trained is not None else space.num_classes(dataset)
    t_start = time.perf_counter()
    models = []
    bar = tqdm(targets, desc="export", unit="model", disable=not cfg.progress or len(targets) < 2,
               file=sys.stderr, leave=False)
    device_cfg = run.config.get("device") or {}
    device_kind = device_cfg.get("kind")
    device_table = device_cfg.get("path") if device_kind == "profiled" else None
    for target in bar:
        bar.set_postfix_str(str(target.index if target.index is not None else target.arch_str)[:40])
        models.append(export_one(target, space, dataset, run.device, folder, cfg, device_table, device_kind, trained))

    failed = [m for m in models if m["status"] != "ok"]
    trt_failed = [m for m in models if (m.get("tensorrt") or {}).get("status") == "failed"]
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool_versions": tool_versions(),
        "machine": machine_info(),
        "opset": cfg.opset,
        "run": {"dir": str(run.path.resolve()), "space": run.space, "dataset": dataset, "device": run.device,
                "summary": run.summary},
        "network": {"space": run.space, **run.space_params, "dataset": dataset, "input_shape": list(input_shape),
                    "num_classes": num_classes, "input_name": INPUT_NAME,
                    "output_name": OUTPUT_NAME, "batch": cfg.batch if cfg.batch is not None else "dynamic"},
        "settings": {k: v for k, v in asdict(cfg).items() if k not in ("run", "out")},
        "weights": weights_label(cfg, trained is not None),
        "weights_note": ("weights loaded from the checkpoint" if cfg.weights is not None else
                         TRAINED_NOTE if trained is not None else WEIGHTS_NOTE),
        "selection": selection,
        "models": models,
        "counts": {"selected": len(models), "ok": len(models) - len(failed), "failed": len(failed),
                   "tensorrt_failed": len(trt_failed)},
        "wall_s": round(time.perf_counter() - t_start, 3),
    }
    write_report(folder, manifest)
    if cfg.plot:
        write_front_plot(folder / "export_front.png", run, models)
    if config_text is not None:
        write_text_atomic(folder / "export_config.yaml", config_text)
    write_json_atomic(folder / outdir.MANIFEST, manifest)
    return manifest
