"""The table a multirun ends with: one row per job, printed and written to <sweep dir>/summary.csv.

Registered as a Hydra callback in hwnas/conf/search.yaml (hydra.callbacks.sweep_summary).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

COLUMNS = ("job", "searcher", "device", "seed", "latency_ms", "hv_ratio", "front_regret", "best_accuracy",
           "status", "run_dir")
ERROR_FILE = "error.txt"  # a job rejected during a sweep leaves its one-line reason here


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def sweep_rows(sweep_dir: Path) -> list[dict]:
    rows = []
    jobs = [d for d in sweep_dir.iterdir() if d.is_dir() and (d / ".hydra").is_dir()]
    for d in sorted(jobs, key=lambda d: (int(d.name.split("_")[0]) if d.name.split("_")[0].isdigit() else 1 << 30,
                                         d.name)):
        row = {"job": d.name.split("_")[0], "run_dir": str(d)}
        if (d / "summary.json").is_file():
            s = json.loads((d / "summary.json").read_text())
            row.update(searcher=s["searcher"], device=s["device"], seed=s["seed"],
                       latency_ms=(s.get("constraints") or {}).get("latency_ms"), hv_ratio=s.get("hv_ratio"),
                       front_regret=s.get("front_regret"), best_accuracy=s.get("best_feasible_accuracy"),
                       status="ok")
        else:
            err = d / ERROR_FILE
            row["status"] = "failed: " + err.read_text().strip() if err.is_file() else "unfinished"
        rows.append({c: _fmt(row.get(c)) for c in COLUMNS})
    return rows


def format_table(rows: list[dict]) -> str:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs: Any) -> None:
        from hwnas.io import write_text_atomic

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = sweep_rows(sweep_dir)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(sweep_dir / "summary.csv", buf.getvalue())
        print(f"\nsweep of {len(rows)} runs ({sweep_dir / 'summary.csv'}):")
        print(format_table(rows))
        failed = sum(r["status"] != "ok" for r in rows)
        if failed:
            print(f"hwnas: error: {failed} of {len(rows)} runs failed (status column)", flush=True)
            raise SystemExit(2)
