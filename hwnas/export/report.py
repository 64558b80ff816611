"""Human-readable outputs of `hwnas-export`: report.md and export_front.png."""
from __future__ import annotations

from pathlib import Path

from hwnas.rundir import RunDir
from hwnas.io import save_figure_atomic, write_text_atomic


def _fmt(value, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def sig3(value: float | None) -> str:
    """`value` to 3 significant digits, without an exponent for ordinary magnitudes (1.23, 12.3, 1230)."""
    if value is None:
        return "-"
    return format(float(format(value, ".3g")), "g") if 1e-4 <= abs(value) < 1e6 else format(value, ".3g")


def verdict(m: dict) -> str:
    """The model's verification in words: `verified` or `FAILED`, with its worst relative error."""
    ver = m.get("verification") or {}
    ok = m.get("status") == "ok" and ver.get("passed")
    word = "verified" if ok else "FAILED"
    rel, ratio = ver.get("max_rel_err"), ver.get("tol_ratio")
    detail = [f"max rel err {rel:.1e}" if rel is not None else None,
              f"{sig3(ratio)}x tolerance" if ratio is not None and not ok else None]
    detail = [d for d in detail if d]
    return f"{word} ({', '.join(detail)})" if detail else word


def summary_lines(manifest: dict, out: Path) -> list[str]:
    """What `hwnas-export` prints: one line for the export, then one per model."""
    c = manifest["counts"]
    head = f"exported {c['ok']} model(s) to {out}: {c['ok']} of {c['selected']} verified"
    if c["failed"]:
        head += f", {c['failed']} FAILED (moved to {out / 'failed'})"
    if c["tensorrt_failed"]:
        head += f", {c['tensorrt_failed']} TensorRT engine(s) FAILED"
    lines = [head + "; see manifest.json, report.md"]
    for m in manifest["models"]:
        lat = m.get("measured_latency_ms") or {}
        trt = (m.get("tensorrt") or {}).get("status", "-")
        cpu = f"ORT CPU {sig3(lat['median'])} ms" if lat else "ORT CPU -"
        table = m.get("device_latency_ms")
        if lat and table and lat.get("settings_of_table"):  # timed as the table was: the two compare
            cpu += f" (table {sig3(table)}, {100 * (table / lat['median'] - 1):+.0f}%)"
        acc = m.get("accuracy")
        test = f"  test acc {acc['onnx_test_accuracy']:.2f}% (ONNX)" if acc else ""
        lines.append(f"  {m['name']}  {verdict(m)}  {cpu}{test}  TensorRT {trt}  {m['arch']}")
    return lines


def _cell(text: str) -> str:
    """Escape `|` (NAS-Bench-201 strings are full of them) inside a Markdown table cell."""
    return text.replace("|", "\\|")


def write_report(out: Path, manifest: dict) -> None:
    """report.md: one row per model, then the settings that the figures depend on."""
    net, run = manifest["network"], manifest["run"]
    lines = [
        f"# Export of {run['dir']}",
        "",
        f"{net['space']} (C={net.get('channels')}, N={net.get('cells_per_stage')}) for {net['dataset']} "
        f"(input {net['input_shape']}), device of the run: {run['device']}; opset {manifest['opset']}, "
        f"batch {net['batch']}. Selection: {manifest['selection']['mode']}.",
        "",
        f"**Weights: {manifest['weights']}.** {manifest['weights_note']}",
        "",
        "| index | arch | status | pred. acc. | pred. latency ms | ORT CPU ms (median ± IQR) | params | MFLOPs "
        "| verification | TensorRT | file |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in manifest["models"]:
        pred = m.get("predicted") or {}
        lat = m.get("measured_latency_ms") or {}
        ver = m.get("verification") or {}
        trt = m.get("tensorrt") or {}
        measured = f"{sig3(lat['median'])} ± {sig3(lat['iqr'])}" if lat else "-"
        mflops = _fmt(m["flops"] / 1e6, ".2f") if m.get("flops") is not None else "-"
        lines.append(
            f"| {_fmt(m['index'], 'd')} | `{_cell(m['arch'])}` | {m['status']} | {_fmt(pred.get('accuracy'), '.2f')} "
            f"| {sig3(pred.get('latency_ms'))} | {measured} | {_fmt(m.get('params'), ',')} | {mflops} "
            f"| {verdict(m) if ver else '-'} | {trt.get('status', '-')} | {m.get('file') or '-'} |"
        )
    trained = [m for m in manifest["models"] if m.get("accuracy")]
    if trained:
        lines += ["", "## Trained weights: accuracy", "",
                  "| arch | val. acc. (search) | test acc. (search, torch) | test acc. (ONNX, onnxruntime) | checkpoint |",
                  "|---|---|---|---|---|"]
        for m in trained:
            ck, acc = m["checkpoint"], m["accuracy"]
            lines.append(f"| `{_cell(m['arch'])}` | {_fmt(ck.get('val_accuracy'), '.2f')} | "
                         f"{_fmt(ck.get('test_accuracy'), '.2f')} | {acc['onnx_test_accuracy']:.2f} "
                         f"(n={acc['n_test']}) | {Path(ck['file']).name} |")
    failed = [m for m in manifest["models"] if m["status"] != "ok"]
    if failed:
        lines += ["", "## Failed", ""] + [f"- {m['name']}: {m['error']}" for m in failed]
    s = manifest["settings"]
    lat_settings = next((m["measured_latency_ms"] for m in manifest["models"] if m.get("measured_latency_ms")), {})
    lines += [
        "",
        "## How the figures were obtained",
        "",
        f"- Verification: onnxruntime CPU vs torch on seeded N(0, 1) inputs (seed {s['seed']}), batches "
        f"{s['verify_batches'] if s['batch'] is None else [s['batch']]}; pass iff |onnx - torch| <= "
        f"{s['atol']} + {s['rtol']} * |torch| everywhere.",
        f"- Latency: onnxruntime {manifest['tool_versions']['onnxruntime']}, "
        f"{lat_settings.get('provider', 'CPUExecutionProvider')}, {s['threads']} intra-op thread(s), "
        f"ORT_ENABLE_ALL, sequential; {s['latency_warmup']} warm-up + {s['latency_repeats']} timed runs "
        f"(time.perf_counter), on {manifest['machine']['processor']} (governor "
        f"{manifest['machine']['cpu_governor'] or 'unknown'}).",
        "- Predicted figures are the run's (benchmark tables for its device), not this machine's.",
        "- FLOPs = 2 x multiply-accumulates of Conv2d and Linear layers at batch 1.",
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))


def write_front_plot(path: Path, run: RunDir, models: list[dict]) -> None:
    """All evaluated points grey, the run's front, the exported models highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    try:
        if run.history is not None and len(run.history):
            ax.scatter(run.history["latency_ms"], run.history["accuracy"], s=10, c="0.75", label="evaluated")
        front = run.pareto.sort_values("latency_ms")
        ax.plot(front["latency_ms"], front["accuracy"], "o-", c="tab:blue", ms=4, lw=1, label="Pareto front")
        done = [(m["predicted"]["latency_ms"], m["predicted"]["accuracy"], m) for m in models
                if m.get("predicted") and "latency_ms" in m["predicted"] and "accuracy" in m["predicted"]]
        for status, colour, marker in (("ok", "tab:red", "*"), ("failed", "black", "x")):
            pts = [(x, y, m) for x, y, m in done if (m["status"] == "ok") == (status == "ok")]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=110, c=colour, marker=marker, zorder=3,
                           label="exported" if status == "ok" else "export failed")
                for x, y, m in pts:
                    ax.annotate(str(m["index"] if m["index"] is not None else m["name"]), (x, y),
                                textcoords="offset points", xytext=(4, 4), fontsize=7)
        budget = run.latency_budget
        if budget is not None:
            ax.axvline(budget, ls="--", c="0.4", lw=0.8, label=f"budget {budget:g} ms")
        ax.set_xlabel(f"predicted latency on {run.device} (ms)")
        ax.set_ylabel(f"{run.dataset} accuracy (run's figure)")
        ax.set_title(f"{run.space} / {run.dataset} / {run.device}: exported models")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        save_figure_atomic(fig, path)
    finally:
        plt.close(fig)
