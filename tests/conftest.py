"""Shared fixtures. The data directory defaults to ../shared/benchmarks beside the repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwnas.search_config import make_search_cfg  # noqa: F401  (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
# Absolute, so subprocesses started in another folder (wheel test, sweeps) find the data too.
os.environ["HWNAS_DATA_DIR"] = str(Path(os.environ.get("HWNAS_DATA_DIR") or REPO.parent / "shared" / "benchmarks").resolve())
# Keep torch and onnxruntime from oversubscribing CI's two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _user_home(tmp_path_factory, monkeypatch):
    """What tests measure (tables, device configs) goes to a temporary user folder, never ~/.local."""
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path_factory.mktemp("hwnas_home")))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["HWNAS_DATA_DIR"]).resolve()
    if not (path / "nb201_accuracy.csv").is_file():
        pytest.fail(f"benchmark data not found in {path}; set HWNAS_DATA_DIR (see README 'Data')")
    return path


@pytest.fixture(scope="session")
def nb201(data_dir):
    from hwnas.spaces import NB201Space

    return NB201Space(data_dir=data_dir)


def run_search_dir(tmp_path, name: str, **kw):
    """(summary, run dir) of a library-level search with make_search_cfg(**kw), written to tmp_path/name."""
    from hwnas.search import search

    out = tmp_path / name
    summary = search(make_search_cfg(**kw), out, progress=False, log=lambda *a: None)
    return summary, out


def read_rows(path) -> list[dict]:
    """Rows of a CSV file (history.csv, pareto.csv) as dicts of strings."""
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


def run_app(*args, timeout=600, **popen):
    """`hwnas-search <args>` in a subprocess from the repository, as a user runs it."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.search", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, **popen)


def export_trained_run(run: Path, input_shape: list[int]) -> tuple[list[dict], dict[str, float]]:
    """hwnas-export of a trained search's run (a subprocess, as a user runs it): the manifest's
    models, each checked verified with `input_shape` (C, H, W), and pareto.csv's test accuracies."""
    import json
    import subprocess
    import sys

    front = {row["arch"]: float(row["test_accuracy"]) for row in read_rows(run / "pareto.csv")}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.export", f"run={run}", "progress=false", "plot=false"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    models = json.loads((run / "export" / "manifest.json").read_text())["models"]
    assert {m["arch"] for m in models} == set(front)
    for m in models:
        assert m["status"] == "ok" and m["io"]["inputs"][0]["shape"][1:] == list(input_shape)
    return models, front


def kill_search_when(args: list[str], ready, bound_s: float = 900) -> None:
    """Start `hwnas-search args` and SIGKILL it as soon as `ready()` is true (progress, not time:
    `bound_s` only stops a hung test), to test resuming a killed search. Only the search process
    is killed; what it started and left behind (Ray's helper processes) is cleaned up after."""
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.apps.search", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + bound_s
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # orphans of the killed search, not the search itself
    except ProcessLookupError:
        pass
