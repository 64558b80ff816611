"""Reading run directories and choosing what to export."""
from __future__ import annotations

import json

import numpy as np
import pytest
from export_fixture import ALL_NONE, ALL_OPS, CONV1, SKIPS, edit_config, make_run

from hwnas.errors import HwnasError
from hwnas.export.run import (
    best_under_budget_index,
    knee_index,
    objectives,
    resolve_archs,
    select_rows,
)
from hwnas.rundir import load_run


@pytest.fixture()
def run_dir(tmp_path, nb201, data_dir):
    return make_run(tmp_path / "run", nb201, data_dir=data_dir)


def test_load_run_reads_everything(run_dir):
    run = load_run(run_dir)
    assert (run.space, run.dataset, run.device) == ("nb201", "cifar10", "raspi4")
    assert run.space_params == {"channels": 4, "cells_per_stage": 1}
    assert run.latency_budget == 5.0 and run.maximize
    assert list(run.pareto["arch"]) == [ALL_NONE, SKIPS, CONV1, ALL_OPS]
    pred = run.predicted(CONV1)
    assert pred["accuracy"] == 88.0 and pred["latency_ms"] == 2.2 and pred["feasible"] is True
    assert run.predicted("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|") is None


def test_space_params_come_from_config_json_only(run_dir):
    # A Hydra folder saying otherwise (or none at all) changes nothing: config.json is the record.
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("space:\n  name: nb201\n  channels: 16\n  cells_per_stage: 5\n")
    assert load_run(run_dir).space_params == {"channels": 4, "cells_per_stage": 1}
    edit_config(run_dir, "space", channels=8)
    assert load_run(run_dir).space_params == {"channels": 8, "cells_per_stage": 1}


def test_a_run_without_config_json_is_refused_not_defaulted(run_dir):
    # Before, a missing .hydra/config.yaml silently exported NAS-Bench-201's C=16, N=5 network.
    (run_dir / "config.json").unlink()
    with pytest.raises(HwnasError, match="config.json is missing.*re-run the search with this version of hwnas"):
        load_run(run_dir)


def test_knee_is_farthest_from_the_extremes_line():
    # error/latency; the corner point (2, 1) is the knee of this L-shaped front.
    pts = np.array([[10.0, 1.0], [2.0, 1.2], [1.5, 8.0], [1.0, 10.0]])
    assert knee_index(pts) == 1
    assert knee_index(pts[[0]]) == 0
    assert knee_index(pts[[0, 3]]) == 1  # two points: the more accurate one
    same = np.array([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0]])
    assert knee_index(same) in (0, 1, 2)


def test_best_under_budget():
    pts = np.array([[90.0, 0.5], [20.0, 2.0], [12.0, 3.0], [8.0, 9.0]])
    assert best_under_budget_index(pts, 5.0) == 2
    assert best_under_budget_index(pts, None) == 3
    with pytest.raises(HwnasError, match="no front architecture has latency <= 0.1"):
        best_under_budget_index(pts, 0.1)


def test_select_rows_modes(run_dir):
    run = load_run(run_dir)
    assert select_rows(run, "all") == [0, 1, 2, 3]
    assert select_rows(run, "knee") == [2]
    assert select_rows(run, "best_under_budget") == [2]
    assert select_rows(run, "best_under_budget", budget_ms=100) == [3]
    with pytest.raises(HwnasError, match="unknown select='best'"):
        select_rows(run, "best")


def test_error_metric_datasets_minimise_the_accuracy_column(run_dir):
    run = load_run(run_dir)
    assert objectives(run.pareto, maximize=False)[0, 0] == 10.0
    assert objectives(run.pareto, maximize=True)[0, 0] == 90.0


def test_resolve_archs(nb201):
    idx = nb201.index(nb201.parse(ALL_OPS))
    archs = resolve_archs(nb201, [idx, str(idx), SKIPS, ALL_OPS])
    assert [str(a) for a in archs] == [ALL_OPS, SKIPS]
    with pytest.raises(HwnasError, match="unknown op 'conv_5x5'"):
        resolve_archs(nb201, [ALL_OPS.replace("nor_conv_3x3", "conv_5x5")])
    with pytest.raises(HwnasError, match="out of range"):
        resolve_archs(nb201, [99999])
    with pytest.raises(HwnasError):
        resolve_archs(nb201, [1.5])
    with pytest.raises(HwnasError, match="selects nothing"):
        resolve_archs(nb201, [])


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "pareto.csv").unlink(), "pareto.csv is missing"),
    (lambda d: (d / "summary.json").unlink(), "summary.json is missing"),
    (lambda d: (d / "summary.json").write_text("{not json"), "corrupt JSON"),
    (lambda d: (d / "summary.json").write_text(json.dumps({"space": "nb201"})), "missing key"),
    (lambda d: (d / "pareto.csv").write_text(""), "empty file"),
    (lambda d: (d / "pareto.csv").write_text("query,arch\n1,x\n"), "missing column"),
    (lambda d: (d / "pareto.csv").write_text("arch,accuracy,latency_ms\nx,high,1\n"), "not a number"),
    (lambda d: (d / "pareto.csv").write_text("query,arch,index,accuracy,latency_ms,feasible\n"),
     "Pareto front is empty"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json: corrupt JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({"dataset": {"name": "cifar10"}})),
     "lacks space.name"),
    (lambda d: edit_config(d, "space", channels=None), "lacks space.channels"),
    (lambda d: edit_config(d, "dataset", name=None), "lacks dataset.name"),
    (lambda d: edit_config(d, "space", channels="8"), "space.channels='8' is not a positive integer"),
    (lambda d: edit_config(d, "space", name="darts"), "space 'darts' is not a search space of this hwnas"),
])
def test_bad_run_dirs(run_dir, damage, message):
    damage(run_dir)
    with pytest.raises(HwnasError, match=message):
        load_run(run_dir)


def test_not_a_directory(tmp_path):
    with pytest.raises(HwnasError, match="does not exist"):
        load_run(tmp_path / "nope")
