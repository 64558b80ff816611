"""The whole story once, on your own data: profile this CPU for mbv3, search Fashion-MNIST under a
latency budget with LaNAS (`--searcher`; 100 trainings), export the front, and compare each
exported model's accuracy and measured latency with what the search predicted.

Runs the three commands exactly as a user would (subprocesses), then writes the table into
docs/training.md. Outputs stay under benchmarks/results/user_story/.

    python -m benchmarks.user_story                  # ~1 h on a busy 2-core machine
    python -m benchmarks.user_story --queries 10 --no-docs
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

try:  # python -m benchmarks.<name> from the repo root (the documented way)
    from benchmarks.docs_section import write_section
except ModuleNotFoundError:  # python benchmarks/<name>.py: this folder is sys.path[0]
    from docs_section import write_section

RESULTS = Path(__file__).resolve().parent / "results" / "user_story"


def _run(args: list[str]) -> float:
    print("$", " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--width", type=float, default=0.25, help="mbv3 width of the searched networks")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--searcher", default="lanas")
    p.add_argument("--quantile", type=float, default=0.3, help="latency budget: this quantile of the space here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-docs", action="store_true")
    a = p.parse_args()

    from hwnas.config import this_machine_table
    from hwnas.io import write_json_atomic
    from hwnas.userdirs import user_tables_dir

    RESULTS.mkdir(parents=True, exist_ok=True)
    table = this_machine_table("mbv3", a.dataset, a.width)
    run = RESULTS / f"search-q{a.queries}-seed{a.seed}"
    # Seconds of each step, kept beside the run, so a re-run that skips a finished step reports it.
    times_path = RESULTS / f"seconds-q{a.queries}-seed{a.seed}.json"
    seconds = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def step(name: str, args: list[str]) -> None:
        seconds[name] = round(_run(args), 1)
        write_json_atomic(times_path, seconds)

    if not (user_tables_dir() / f"{table}.json").is_file():
        step("profile", ["hwnas.apps.profile", "space=mbv3", f"width_mult={a.width}", f"dataset={a.dataset}",
                         "progress=false"])
    search = ["hwnas.apps.search", "space=mbv3", f"space.width_mult={a.width}", "evaluator=train",
              f"dataset={a.dataset}", "device=this_machine", f"searcher={a.searcher}",
              f"constraints.latency_quantile={a.quantile}", f"budget.queries={a.queries}", f"seed={a.seed}",
              "evaluator.threads=1", "output.progress=false", f"hydra.run.dir={run}"]
    resume = ["resume=true"] if (run / "history.csv").is_file() and not (run / "summary.json").is_file() else []
    if not (run / "summary.json").is_file():
        step("search", search + resume)
    out = run / "export"
    step("export", ["hwnas.apps.export", f"run={run}", f"out={out}", "threads=1", "progress=false"])
    took = ", ".join(f"{k} {seconds[k]:.0f} s" for k in ("profile", "search", "export") if k in seconds)

    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    lines = [f"mbv3 (width {a.width:g}) on {a.dataset}, searcher {a.searcher}, {summary['queries']} trainings with "
             f"the default proxy, latency budget {summary['constraints']['latency_ms']:.3g} ms (the "
             f"{a.quantile:g} quantile of the space on this CPU's table {table}); {took}.",
             "",
             "| arch | val acc (search) | test acc (search, torch) | test acc (ONNX) | predicted ms | measured ms "
             "(ORT CPU median) | measured / predicted |",
             "|---|---|---|---|---|---|---|"]
    for m in manifest["models"]:
        pred = m.get("predicted") or {}
        ck, acc, lat = m.get("checkpoint") or {}, m.get("accuracy") or {}, m.get("measured_latency_ms") or {}
        ratio = lat.get("median") / pred["latency_ms"] if lat and pred.get("latency_ms") else float("nan")
        arch = m["arch"].replace("|", "\\|")  # mbv3 strings separate stages with | (a table cell)
        lines.append(f"| `{arch}` | {ck.get('val_accuracy', float('nan')):.2f} | "
                     f"{ck.get('test_accuracy') or float('nan'):.2f} | {acc.get('onnx_test_accuracy', float('nan')):.2f} | "
                     f"{pred.get('latency_ms', float('nan')):.3f} | {lat.get('median', float('nan')):.3f} | {ratio:.2f} |")
    text = "\n".join(lines)
    print(text)
    if not a.no_docs:
        write_section("training.md", "user_story", text)


if __name__ == "__main__":
    main()
