"""hwnas-search as users run it: a Hydra app in a subprocess."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_app(*args, timeout=120, **popen):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.search", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, **popen)


def test_default_search_writes_the_run_dir_contract(tmp_path):
    out = tmp_path / "run"
    r = run_app(f"hydra.run.dir={out}", "output.progress=false")
    assert r.returncode == 0, r.stderr
    assert f"run dir: {out}" in r.stdout and "Pareto front" in r.stdout
    for name in ("history.csv", "pareto.csv", "summary.json", "pareto.png", "config.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["searcher"] == "nsga2" and summary["device"] == "raspi4" and summary["queries"] == 100
    header = (out / "history.csv").read_text().splitlines()[0]
    assert header == "query,arch,index,accuracy,latency_ms,feasible"
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_history_bytes_through_hydra(tmp_path):
    args = ["searcher=regularized_evolution", "device=pixel3", "dataset=cifar100",
            "constraints.latency_ms=8", "budget.queries=25", "seed=3", "output.plot=false", "output.progress=false"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_app(f"hydra.run.dir={a}", *args).returncode == 0
    assert run_app(f"hydra.run.dir={b}", *args).returncode == 0
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()


@pytest.mark.parametrize("arg, expected", [
    # (the list grows with every searcher; test_searchers checks its content)
    ("searcher=nope", "unknown searcher 'nope'; valid searchers: "),
    ("device=nope", "unknown device 'nope'; valid devices: 1080ti_1"),
    ("dataset=mnist", "unknown dataset 'mnist'; valid datasets: ImageNet16-120, cifar10, cifar100"),
    ("constraints.latency_ms=0.005", "the smallest latency is 0.01128 ms"),
    ("constraints.energy_mj=3", "has no energy figures"),
    ("data_dir=/nonexistent", "data directory /nonexistent does not exist"),
    ("device=csv", "device=csv needs device.path"),
    # bad searcher option values (tests/test_searchers.py checks each option at library level)
    ("searcher=ganas searcher.lr=-1", "searcher.lr must be > 0, got -1"),
    ("searcher=agnet searcher.tau=0", "searcher.tau must be > 0, got 0"),
])
def test_user_mistakes_get_one_clear_error(tmp_path, arg, expected):
    r = run_app(f"hydra.run.dir={tmp_path / 'x'}", *arg.split())
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expected in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_data_dir_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HWNAS_DATA_DIR"}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.search", f"hydra.run.dir={tmp_path}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "HWNAS_DATA_DIR" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("searcher", ["nsga2", "lanas"])
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, searcher):
    args = [f"searcher={searcher}", "budget.queries=60", "seed=5", "evaluator.delay_s=0.04",
            "output.progress=false", "output.plot=false"]
    ref = tmp_path / "ref"
    assert run_app(f"hydra.run.dir={ref}", *args).returncode == 0

    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.apps.search", f"hydra.run.dir={run}", *args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hist = run / "history.csv"
    # No deadline tied to machine speed: wait for the 15th row while the search is alive (a
    # generous bound only stops a hung test).
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        if hist.is_file() and len(hist.read_text().splitlines()) > 15:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(hist.read_text().splitlines()) - 1
    assert 15 <= done < 60, "the kill must land mid-search"
    assert not (run / "summary.json").exists()

    r = run_app(f"hydra.run.dir={run}", *args)  # without resume=true: refuses to lose the work
    assert r.returncode == 2 and "resume=true" in r.stderr
    r = run_app(f"hydra.run.dir={run}", *args, "resume=true")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert hist.read_bytes() == (ref / "history.csv").read_bytes()
    assert (run / "pareto.csv").read_bytes() == (ref / "pareto.csv").read_bytes()
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert {k: v for k, v in s1.items() if k != "wall_s"} == {k: v for k, v in s2.items() if k != "wall_s"}


def test_resume_refuses_a_changed_config(tmp_path):
    run = tmp_path / "run"
    assert run_app(f"hydra.run.dir={run}", "budget.queries=10", "output.plot=false").returncode == 0
    r = run_app(f"hydra.run.dir={run}", "budget.queries=10", "seed=9", "resume=true")
    assert r.returncode == 2 and "seed (0 then, 9 now)" in r.stderr
