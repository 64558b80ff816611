"""A plain wheel works anywhere: built from this tree, installed into a fresh venv (offline: torch
and the rest come from the system site-packages), run from another folder. The three jobs
succeed and what the user measures goes to the user folder, not into the installed package."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["repeats=2", "warmup=1", "e2e_repeats=2", "calibrate=2", "validate=3", "progress=false", "plot=false"]
SKIP = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "outputs",
                              "multirun", "*.onnx")

pytestmark = pytest.mark.wheel


def _run(cmd, cwd, env, timeout=600):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_wheel_in_a_fresh_venv_runs_the_three_jobs(tmp_path):
    src = tmp_path / "src"  # build from a copy: the build leaves build/ and egg-info beside the sources
    shutil.copytree(REPO, src, ignore=SKIP)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"),
          str(src)], tmp_path, env)
    (wheel,) = (tmp_path / "whl").glob("hwnas-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path, env)
    py, bindir = venv / "bin" / "python", venv / "bin"
    _run([str(py), "-m", "pip", "install", "--no-deps", str(wheel)], tmp_path, env)

    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    env.update(HWNAS_HOME=str(home), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}")
    where = _run([str(py), "-c", "import hwnas; print(hwnas.__file__)"], work, env).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), f"the venv imports {where}, not its wheel"

    _run([str(bindir / "hwnas-profile"), "device=wheeltable", *TINY], work, env)
    assert (home / "latency_tables" / "wheeltable.json").is_file()
    assert (home / "conf" / "device" / "wheeltable.yaml").is_file()
    site = Path(where).parent
    assert not (site / "conf" / "device" / "wheeltable.yaml").exists() and not list(site.rglob("wheeltable*"))

    common = ["budget.queries=5", "searcher=random", "output.plot=false", "output.progress=false"]
    _run([str(bindir / "hwnas-search"), "device=wheeltable", *common, "hydra.run.dir=mine"], work, env)
    assert json.loads((work / "mine" / "summary.json").read_text())["device"] == "wheeltable"
    _run([str(bindir / "hwnas-search"), "device=pixel3", *common, "hydra.run.dir=pub"], work, env)
    assert json.loads((work / "pub" / "summary.json").read_text())["queries"] == 5
    _run([str(bindir / "hwnas-export"), "run=mine", "select=knee", "latency_warmup=1", "latency_repeats=3",
          "progress=false"], work, env)
    assert json.loads((work / "mine" / "export" / "manifest.json").read_text())["counts"]["ok"] >= 1
