"""`python -m hwnas.apps.export` through a subprocess: exit codes, files, clean errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixture import ALL_OPS, CONV1, make_run

REPO = Path(__file__).resolve().parents[1]
FAST = ["latency_warmup=1", "latency_repeats=3", "progress=false"]


@pytest.fixture()
def run_dir(tmp_path, nb201, data_dir):
    return make_run(tmp_path / "run", nb201, data_dir=data_dir)


def export(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "hwnas.apps.export", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hwnas: error:")]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_app_exports_the_knee(run_dir, tmp_path):
    proc = export(f"run={run_dir}", "select=knee", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = run_dir / "export"
    m = json.loads((out / "manifest.json").read_text())
    assert [e["arch"] for e in m["models"]] == [CONV1] and m["models"][0]["status"] == "ok"
    assert (out / m["models"][0]["file"]).is_file() and (out / "report.md").is_file()
    assert (out / "export_config.yaml").is_file() and (out / "export_front.png").is_file()
    assert "exported 1 model(s)" in proc.stdout
    # A passing model reads as passing: the verdict and the relative error, not a bare abs error.
    (line,) = [ln for ln in proc.stdout.splitlines() if m["models"][0]["name"] in ln]
    assert " verified (max rel err " in line and "max abs err" not in line and "FAILED" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # Hydra left no clutter in cwd


def test_a_run_searched_with_8_channels_exports_8_channels(tmp_path):
    # hydra.output_subdir=null: no .hydra/ folder; export used to fall back to C=16 silently.
    run = tmp_path / "s8"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    search = subprocess.run([sys.executable, "-m", "hwnas.apps.search", "searcher=random", "budget.queries=4",
                             "space.channels=8", "space.cells_per_stage=1", "output.progress=false",
                             "output.plot=false", "hydra.output_subdir=null", f"hydra.run.dir={run}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert search.returncode == 0, search.stderr
    assert not (run / ".hydra").exists() and (run / "config.json").is_file()
    proc = export(f"run={run}", "select=knee", "plot=false", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((run / "export" / "manifest.json").read_text())
    assert (m["network"]["channels"], m["network"]["cells_per_stage"]) == (8, 1)
    import onnx

    graph = onnx.load(run / "export" / m["models"][0]["file"]).graph
    conv_weights = [list(t.dims) for t in graph.initializer if len(t.dims) == 4]
    assert [8, 3, 3, 3] in conv_weights  # the stem: 8 output channels from RGB
    assert max(d[0] for d in conv_weights) == 32  # 8 -> 16 -> 32 over the three stages, not 64


def test_app_archs_by_index_and_string(run_dir, tmp_path, nb201):
    idx = nb201.index(nb201.parse(ALL_OPS))
    proc = export(f"run={run_dir}", f"out={tmp_path / 'o'}", f'archs=[{idx},"{CONV1}"]', "plot=false",
                  *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [e["arch"] for e in m["models"]] == [ALL_OPS, CONV1]


def test_app_user_errors(run_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    empty = make_run(tmp_path / "empty", _space(run_dir), front=[])
    cases = [
        ([f"run={tmp_path / 'missing'}"], "does not exist"),
        ([f"run={tmp_path}"], "summary.json is missing"),
        ([f"run={empty}"], "Pareto front is empty"),
        ([f"run={run_dir}", 'archs=["|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"]'], "unknown op"),
        ([f"run={run_dir}", f"out={blocker / 'x'}"], "cannot write to output directory"),
        ([], "no run directory given"),
    ]
    for args, fragment in cases:
        assert_user_error(export(*args, *FAST, cwd=tmp_path), fragment)


def test_app_verification_failure(run_dir, tmp_path):
    # A checkpoint with a NaN weight: the exported model cannot verify, on any machine.
    import torch

    from hwnas.export.config import ExportConfig
    from hwnas.export.pipeline import build_model, make_space
    from hwnas.rundir import load_run

    space = make_space(load_run(run_dir), None)
    model = build_model(space, space.parse(ALL_OPS), 10, (3, 32, 32), ExportConfig(run=str(run_dir)))
    state = model.state_dict()
    state["classifier.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    proc = export(f"run={run_dir}", f'archs=["{ALL_OPS}"]', f"weights={tmp_path / 'nan.pt'}", "plot=false",
                  *FAST, cwd=tmp_path)
    assert_user_error(proc, "1 of 1 exports failed")
    out = run_dir / "export"
    m = json.loads((out / "manifest.json").read_text())
    (e,) = m["models"]
    assert e["status"] == "failed" and m["counts"]["failed"] == 1
    assert "non-finite" in e["verification"]["batches"]["1"]["error"]
    assert not list(out.glob("*.onnx")) and (out / e["file"]).is_file() and e["file"].startswith("failed/")


def _space(run_dir):
    from hwnas.spaces import NB201Space

    return NB201Space(data_dir=json.loads((run_dir / "summary.json").read_text())["data_dir"])
