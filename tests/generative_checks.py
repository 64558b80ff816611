"""Checks shared by the generative searchers' tests (GA-NAS, AG-Net): determinism, budget,
no repeats, feasibility of the front, energy as a third objective, replay, SIGKILL resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from conftest import make_search_cfg, read_rows, run_search_dir

from hwnas.pareto import non_dominated
from hwnas.search import build_setup, make_searcher, search
from hwnas.search_loop import run_search

REPO = Path(__file__).resolve().parents[1]


def check_determinism_budget_front(tmp_path, searcher, queries=45, **kw):
    args = dict(searcher=searcher, queries=queries, latency_ms=20.0, **kw)
    s1, d1 = run_search_dir(tmp_path, "a", seed=1, **args)
    _, d2 = run_search_dir(tmp_path, "b", seed=1, **args)
    _, d3 = run_search_dir(tmp_path, "c", seed=2, **args)
    assert (d1 / "history.csv").read_bytes() == (d2 / "history.csv").read_bytes()
    assert (d1 / "history.csv").read_bytes() != (d3 / "history.csv").read_bytes()
    hist = read_rows(d1 / "history.csv")
    assert len(hist) == s1["queries"] == queries  # the budget, exactly
    assert len({r["arch"] for r in hist}) == queries  # never queried twice
    # Latency is free: nothing over the budget is ever queried, so nothing infeasible is on the front.
    assert all(r["feasible"] == "true" and float(r["latency_ms"]) <= 20.0 for r in hist)
    front = read_rows(d1 / "pareto.csv")
    assert len(front) >= 2, "a front, not one point"
    assert all(r["feasible"] == "true" and float(r["latency_ms"]) <= 20.0 for r in front)


def check_seeded_without_a_pool(cfg, monkeypatch, check_searcher=None):
    """As in a space with no benchmark index (no feasible pool): candidates are constrained
    space samples; every query is worth querying and the same seed asks the same."""
    from hwnas.search import build_setup, make_searcher
    from hwnas.search_loop import run_search

    queries = cfg.budget.queries
    s = build_setup(cfg)
    monkeypatch.setattr(s.problem, "feasible_pool", lambda: None)
    runs = []
    for _ in range(2):
        s.evaluator.__init__(s.space, queries, s.evaluator.all_accuracy())
        searcher = make_searcher(cfg.searcher, s.problem, 3)
        assert searcher.pool is None
        runs.append(run_search(s.problem, s.evaluator, searcher).history)
    h = runs[0]
    assert len(h) == queries and len({e.arch for e in h}) == queries
    assert all(s.problem.is_worth_querying(e.arch) for e in h)
    assert [e.arch for e in h] == [e.arch for e in runs[1]]


def check_no_budget_front(tmp_path, searcher, **kw):
    """Without a budget the front spans the trade-off and every front point is non-dominated."""
    _, d = run_search_dir(tmp_path, "nb", searcher=searcher, queries=45, latency_ms=None, seed=0, **kw)
    hist = read_rows(d / "history.csv")
    assert len({r["arch"] for r in hist}) == len(hist) == 45
    front = read_rows(d / "pareto.csv")
    F = np.array([(100 - float(r["accuracy"]), float(r["latency_ms"])) for r in hist])
    mask = non_dominated(F)
    assert len(front) >= 2 and len(front) == int(mask.sum())


def check_energy(tmp_path, searcher, **kw):
    """pi5_onnx has energy: a third objective, and an energy budget is respected."""
    cfg = make_search_cfg(searcher=searcher, device="pi5_onnx", dataset="cifar100", latency_ms=None,
                          queries=35, seed=0, **kw)
    setup = build_setup(cfg)
    cap = float(np.quantile(setup.problem.energy(setup.problem.feasible_pool()), 0.5))
    cfg = replace(cfg, constraints=replace(cfg.constraints, energy_mj=cap))
    out = tmp_path / "e"
    summary = search(cfg, out, progress=False, log=lambda *a: None)
    assert summary["objectives"] == ["error", "latency_ms", "energy_mj"]
    hist = read_rows(out / "history.csv")
    assert len(hist) == 35 and len({r["arch"] for r in hist}) == 35
    assert all(float(r["energy_mj"]) <= cap and r["feasible"] == "true" for r in hist)
    front = read_rows(out / "pareto.csv")
    F = np.array([(100 - float(r["accuracy"]), float(r["latency_ms"]), float(r["energy_mj"])) for r in hist])
    assert len(front) == int(non_dominated(F).sum()) >= 2


def check_replay_mid_batch(searcher, **kw):
    """Replaying a prefix that ends mid-batch gives the uninterrupted run (what resume relies on)."""
    cfg = make_search_cfg(searcher=searcher, queries=37, latency_ms=None, seed=4, **kw)
    s = build_setup(cfg)
    ref = run_search(s.problem, s.evaluator, make_searcher(cfg.searcher, s.problem, 4)).history
    s2 = build_setup(cfg)
    replay = [(e.arch, e.accuracy) for e in ref[:23]]
    again = run_search(s2.problem, s2.evaluator, make_searcher(cfg.searcher, s2.problem, 4), replay=replay).history
    assert [e.arch for e in again] == [e.arch for e in ref]


def _app(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.search", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def _n_rows(hist: Path) -> int:
    return max(len(hist.read_text().splitlines()) - 1, 0) if hist.is_file() else 0


def _kill_after(run_dir: Path, args: list[str], at_least: int) -> int | None:
    """Start hwnas-search, SIGKILL it once history.csv holds >= at_least rows; the rows then.

    None when the run finished (or was finishing) before the kill landed. No timing assumption:
    the wait ends on the rows or on the process's exit; the 15-minute guard only catches a hang.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    err_path = run_dir.parent / f"{run_dir.name}.stderr"
    hist = run_dir / "history.csv"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "hwnas.apps.search", f"hydra.run.dir={run_dir}", *args],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    guard = time.monotonic() + 900
    try:
        while proc.poll() is None and _n_rows(hist) < at_least:
            assert time.monotonic() < guard, f"hwnas-search wrote {_n_rows(hist)} < {at_least} rows in 15 minutes"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        rc = proc.wait()
    assert rc in (0, -signal.SIGKILL), f"hwnas-search failed (exit {rc}): {err_path.read_text()}"
    if rc == 0 or (run_dir / "summary.json").exists():
        return None
    return _n_rows(hist)


def check_sigkill_resume(tmp_path, searcher, *overrides, budget: int = 50, kill_at: int = 25):
    """SIGKILL mid-search (past the random initial design of 20, inside a generated batch), then
    resume=true gives the uninterrupted run's history, front and summary byte for byte.

    Each query sleeps `evaluator.delay_s`, so the kill lands mid-run however slow the machine
    is (the searcher sleeps while this process polls); should the run still finish before the
    kill, it is retried with a longer sleep rather than passed or failed on timing.
    """
    for attempt, delay in enumerate((0.1, 0.5, 2.0)):
        args = [f"searcher={searcher}", *overrides, f"budget.queries={budget}", "seed=5",
                f"evaluator.delay_s={delay}", "output.progress=false", "output.plot=false"]
        run_dir = tmp_path / f"run{attempt}"
        done = _kill_after(run_dir, args, kill_at)
        if done is not None and done < budget:  # all rows but no summary yet: finished all the same
            break
    else:
        raise AssertionError(f"the search finished before the kill even at 2 s per query ({budget} queries)")
    assert kill_at <= done < budget, "the kill must land mid-search"  # kill_at < budget: never vacuous
    assert not (run_dir / "summary.json").exists()

    ref = tmp_path / "ref"  # the sleep only paces the kill: the reference runs without it
    r = _app(f"hydra.run.dir={ref}", *[a for a in args if not a.startswith("evaluator.delay_s=")])
    assert r.returncode == 0, r.stderr
    r = _app(f"hydra.run.dir={run_dir}", *args, "resume=true")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    hist = run_dir / "history.csv"
    assert hist.read_bytes() == (ref / "history.csv").read_bytes()
    assert (run_dir / "pareto.csv").read_bytes() == (ref / "pareto.csv").read_bytes()
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (ref, run_dir))
    assert {k: v for k, v in s1.items() if k != "wall_s"} == {k: v for k, v in s2.items() if k != "wall_s"}
