"""A synthetic latency table (no timing): deterministic numbers for model and source tests."""
from __future__ import annotations

from pathlib import Path

from hwnas.latency.model import overhead_specs
from hwnas.latency.table import LatencyTable
from hwnas.profiling.runners.base import summarize

# Made-up per-op latencies (ms), by op type, scaled by the op's spatial size.
BASE_MS = {"none": 0.001, "skip_connect": 0.0001, "nor_conv_1x1": 0.01, "nor_conv_3x3": 0.03, "avg_pool_3x3": 0.008,
           "add": 0.002, "stem": 0.02, "reduction": 0.05, "head": 0.01, "noop": 0.0, "mbconv": 0.004}


def synthetic_table(space, path: Path, dataset: str = "cifar10", drop: str | None = None,
                    calibration: tuple[float, float] | None = None) -> LatencyTable:
    ops = space.distinct_ops(dataset)
    fp = {"runner": "synthetic", "space": space.name, "dataset": dataset,
          "input_shape": list(space.input_shape(dataset))}
    table = LatencyTable(path, path.stem, fp)
    for spec in [*ops, *overhead_specs(ops, tuple(space.input_shape(dataset)))]:
        if spec.key == drop:
            continue
        x = dict(spec.extra)  # mbv3 blocks: cost grows with kernel and expand ratio
        ms = BASE_MS[spec.op] * spec.h * spec.w / 256 * x.get("k", 1) * x.get("e", 1) + 0.001 * (spec.op == "noop")
        table.add(spec, summarize([ms, ms, ms]))
    if calibration is not None:
        table.calibration = {"a": calibration[0], "b": calibration[1], "n": 10}
    table.save()
    return table
