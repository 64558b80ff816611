"""A small hwnas-search run directory for the export tests (made-up accuracy/latency figures).

The architectures cover every NAS-Bench-201 op, `none` and `skip_connect` edges and a cell
with no path from input to output (all `none`). The network is shrunk (C=4, N=1) through
config.json, written by the search's own code from a SearchConfig, as a real run's is.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from hwnas.config import (
    BudgetConfig,
    ConstraintsConfig,
    DatasetConfig,
    DeviceConfig,
    EvaluatorConfig,
    SearchConfig,
    SpaceConfig,
)
from hwnas.rundir import config_record, write_config

ALL_OPS = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
SKIPS = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
CONV1 = "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|"

# (arch, accuracy, latency_ms): a 4-point front, knee = CONV1, best under 5 ms = CONV1.
FRONT = [(ALL_NONE, 10.0, 0.5), (SKIPS, 80.0, 2.0), (CONV1, 88.0, 2.2), (ALL_OPS, 92.0, 9.0)]
OFF_FRONT = [("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|", 50.0, 4.0)]
COLUMNS = ["query", "arch", "index", "accuracy", "latency_ms", "feasible"]


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def make_run(root: Path, space, front=FRONT, data_dir: Path | None = None, channels: int = 4,
             cells_per_stage: int = 1, budget: float | None = 5.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for q, (arch, acc, lat) in enumerate(list(front) + OFF_FRONT, start=1):
        idx = space.index(space.parse(arch))
        rows.append({"query": q, "arch": arch, "index": idx, "accuracy": acc, "latency_ms": lat,
                     "feasible": "true"})
    write_csv(root / "history.csv", rows)
    write_csv(root / "pareto.csv", rows[: len(front)])
    summary = {"searcher": "random", "seed": 0, "space": "nb201", "dataset": "cifar10", "device": "raspi4",
               "budget": 5, "constraints": {"latency_ms": budget, "energy_mj": None}, "queries": len(rows),
               "best_feasible_accuracy": max((r["accuracy"] for r in rows), default=None),
               "hypervolume": 0.5, "hv_ratio": 0.5, "front_regret": 1.0, "wall_s": 0.1,
               "data_dir": str(data_dir) if data_dir else None}
    (root / "summary.json").write_text(json.dumps(summary))
    write_config(root, config_record(SearchConfig(
        space=SpaceConfig(name="nb201", channels=channels, cells_per_stage=cells_per_stage),
        dataset=DatasetConfig(name="cifar10"), device=DeviceConfig(name="raspi4", kind="benchmark", column="raspi4"),
        evaluator=EvaluatorConfig(name="tabular"), searcher={"name": "random"},
        constraints=ConstraintsConfig(latency_ms=budget), budget=BudgetConfig(queries=5))))
    return root


def edit_config(root: Path, section: str, **values) -> None:
    """Change config.json's `section` (as if the search had been run with those overrides)."""
    cfg = json.loads((root / "config.json").read_text())
    cfg[section].update(values)
    (root / "config.json").write_text(json.dumps(cfg))
