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


def _summary_row(path: Path) -> dict:
    """The table's columns from a job's summary.json; ValueError if it is not a readable one."""
    try:
        s = json.loads(path.read_text(encoding="utf-8"))
        return dict(searcher=s["searcher"], device=s["device"], seed=s["seed"],
                    latency_ms=(s.get("constraints") or {}).get("latency_ms"), hv_ratio=s.get("hv_ratio"),
                    front_regret=s.get("front_regret"), best_accuracy=s.get("best_feasible_accuracy"), status="ok")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(path) from exc


def sweep_rows(jobs: list[tuple[int, Path]]) -> list[dict]:
    """One row per (job number, output dir) of this sweep, in job order."""
    rows = []
    for num, d in sorted(jobs, key=lambda job: job[0]):
        row = {"job": str(num), "run_dir": str(d)}
        err = d / ERROR_FILE
        if (d / "summary.json").is_file():
            try:
                row.update(_summary_row(d / "summary.json"))
            except ValueError:
                row["status"] = "failed: unreadable summary.json"
        elif err.is_file():
            row["status"] = "failed: " + err.read_text(encoding="utf-8", errors="replace").strip()
        else:
            row["status"] = "unfinished"
        rows.append({c: _fmt(row.get(c)) for c in COLUMNS})
    return rows


def format_table(rows: list[dict]) -> str:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def jobs_written_since(sweep_dir: Path, since: float) -> list[tuple[int, Path]]:
    """(job number, folder) of the job folders in `sweep_dir` written since `since` (a time)."""
    import re

    import yaml

    jobs = []
    for d in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        hydra_yaml = d / ".hydra" / "hydra.yaml"
        newest = max((f.stat().st_mtime for f in d.rglob("*") if f.is_file()), default=0.0)
        if newest < since:
            continue  # left by an earlier sweep in a reused folder
        num = None
        if hydra_yaml.is_file():
            try:
                num = yaml.safe_load(hydra_yaml.read_text())["hydra"]["job"]["num"]
            except (yaml.YAMLError, KeyError, TypeError):
                num = None
        if num is None:
            m = re.match(r"(\d+)_", d.name)
            num = int(m.group(1)) if m else None
        if num is not None:
            jobs.append((int(num), d))
    return jobs


class SweepSummary(Callback):
    """Collects this sweep's jobs as they end (their output dirs, whatever hydra.output_subdir is,
    and none left in a reused sweep dir by an earlier sweep), then prints and writes the table."""

    def __init__(self) -> None:
        self.jobs: list[tuple[int, Path]] = []
        self.started = 0.0

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        import time

        self.jobs = []
        self.started = time.time()

    def on_job_end(self, config, job_return, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        num = OmegaConf.select(config, "hydra.job.num", default=None)
        if num is None:  # a single run: no job number, no table
            return
        # hydra.runtime.output_dir is the job's own folder (JobReturn.working_dir is the process's
        # cwd when hydra.job.chdir is false).
        self.jobs.append((int(num), Path(config.hydra.runtime.output_dir)))

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        from hwnas.io import write_text_atomic

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        # A launcher that runs jobs in other processes (hydra/launcher=joblib) calls on_job_end
        # there, not here: then the jobs are the folders this sweep wrote.
        rows = sweep_rows(self.jobs or jobs_written_since(sweep_dir, self.started))
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
