"""Parallel evaluation on Ray (evaluator.workers > 1): the same run directory as one by one,
reproducible, and faults survived for real (a killed worker, a raising evaluation, a timed-out
one, a killed driver resumed)."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import REPO, kill_search_when, make_search_cfg, read_rows, run_app

from hwnas.search import search

try:
    import ray
except ImportError:  # CI installs the extra; a developer without it is told why these skip
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed: pip install 'hwnas[distributed]'", allow_module_level=True)


@pytest.fixture(scope="module")
def ray_local():
    """One small local Ray instance for this module's in-process searches (they join it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # The fault-injecting evaluators below are defined here: ship them to the workers by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=80 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def parallel_cfg(workers: int, searcher: str = "random", queries: int = 16, **ev):
    cfg = make_search_cfg(searcher=searcher, device="raspi4", latency_ms=None, queries=queries, seed=3)
    return replace(cfg, evaluator=replace(cfg.evaluator, workers=workers, num_cpus=0.5, **ev))


def run(tmp_path, name: str, cfg, **kw):
    out = tmp_path / name
    summary = search(cfg, out, progress=False, log=lambda *a: None, **kw)
    return summary, out


# --- evaluators with faults, built on each worker ------------------------------------------

@dataclass(frozen=True)
class Faulty:
    """The NB-201 table evaluator, with injected faults for the named architectures.

    `marks`: a folder shared by the workers, so a fault `..._once` happens on the first try only."""

    marks: str
    raise_always: tuple = ()
    raise_once: tuple = ()
    hang_always: tuple = ()
    hang_once: tuple = ()
    delay: dict | None = None  # arch -> seconds: a per-architecture cost (finishing order shuffles)
    default_delay: float = 0.0

    def __call__(self):
        from hwnas.config import DatasetConfig, EvaluatorConfig
        from hwnas.data.paths import resolve_data_dir
        from hwnas.evaluators.tabular import TabularEvaluator, make_tabular
        from hwnas.spaces import NB201Space

        data_dir = resolve_data_dir(None)
        base = make_tabular(NB201Space(data_dir=data_dir), EvaluatorConfig(name="tabular"),
                            DatasetConfig(name="cifar10"), 10 ** 6, data_dir)
        recipe = self

        class FaultyEvaluator(TabularEvaluator):
            def _evaluate(self, arch):
                text = str(arch)
                first = recipe._first_try(text)
                if text in recipe.raise_always or (text in recipe.raise_once and first):
                    raise RuntimeError(f"injected failure of {text}")
                if text in recipe.hang_always or (text in recipe.hang_once and first):
                    time.sleep(3600)
                time.sleep((recipe.delay or {}).get(text, recipe.default_delay))
                return super()._evaluate(arch)

        return FaultyEvaluator(base.space, 10 ** 6, base.all_accuracy())

    def _first_try(self, text: str) -> bool:
        mark = Path(self.marks) / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".tried")
        try:
            mark.touch(exist_ok=False)
            return True
        except FileExistsError:
            return False


def reference(tmp_path, queries=16, searcher="random"):
    """History rows of the one-by-one search (no Ray) with the same seed."""
    _, out = run(tmp_path, "serial", parallel_cfg(1, searcher, queries))
    return read_rows(out / "history.csv")


# --- reproducibility ----------------------------------------------------------------------

@pytest.mark.parametrize("searcher", ["nsga2"])
def test_batch_searcher_gives_the_one_by_one_history_on_three_workers(tmp_path, ray_local, searcher):
    kw = dict(pop_size=8) if searcher == "nsga2" else dict(
        n_init=6, batch_size=4, pretrain_samples=200, pretrain_steps=20, finetune_steps=5, guide_steps=2,
        n_candidates=64, surrogate_steps=20)
    base = make_search_cfg(searcher=searcher, device="raspi4", latency_ms=None, queries=14, seed=1, **kw)
    serial, s_out = run(tmp_path, "one", base)
    par, p_out = run(tmp_path, "three", replace(base, evaluator=replace(base.evaluator, workers=3, num_cpus=0.5)))
    assert (p_out / "history.csv").read_bytes() == (s_out / "history.csv").read_bytes()
    assert par["hv_ratio"] == serial["hv_ratio"] and par["workers"] == 3


def test_steady_state_history_does_not_depend_on_which_worker_finishes_first(tmp_path, ray_local):
    ref = reference(tmp_path, 14, "regularized_evolution")
    archs = [r["arch"] for r in ref]
    # Two runs whose evaluations finish in different orders: costs rising, then falling, with the ask.
    rising = {a: 0.05 * (i % 4) for i, a in enumerate(archs)}
    falling = {a: 0.05 * (3 - i % 4) for i, a in enumerate(archs)}
    cfg = parallel_cfg(2, "regularized_evolution", 14)
    _, a = run(tmp_path, "rising", cfg, worker_evaluator=Faulty(str(tmp_path), delay=rising, default_delay=0.05))
    _, b = run(tmp_path, "falling", cfg, worker_evaluator=Faulty(str(tmp_path), delay=falling, default_delay=0.05))
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()
    assert len(read_rows(a / "history.csv")) == 14


# --- faults -------------------------------------------------------------------------------

def test_raising_evaluation_is_retried_then_recorded_as_failed_and_the_search_goes_on(tmp_path, ray_local):
    ref = reference(tmp_path)
    bad, flaky = ref[2]["arch"], ref[5]["arch"]
    cfg = parallel_cfg(2, max_retries=2)
    summary, out = run(tmp_path, "faulty", cfg,
                       worker_evaluator=Faulty(str(tmp_path), raise_always=(bad,), raise_once=(flaky,)))
    rows = read_rows(out / "history.csv")
    assert [r["arch"] for r in rows] == [r["arch"] for r in ref]  # random search: the same asks
    by_arch = {r["arch"]: r for r in rows}
    assert by_arch[bad]["accuracy"] == "" and by_arch[bad]["feasible"] == "false"  # never an accuracy
    assert by_arch[flaky]["accuracy"] == ref[5]["accuracy"]  # the retry on another worker answered it
    assert summary["failed_queries"] == 1 and summary["queries"] == 16
    (failure,) = summary["failures"]
    assert failure["arch"] == bad and failure["attempts"] == 3 and "injected failure" in failure["reason"]
    assert bad not in {r["arch"] for r in read_rows(out / "pareto.csv")}
    # Every other query kept the benchmark's accuracy.
    assert all(r["accuracy"] == by_arch[r["arch"]]["accuracy"] for r in ref if r["arch"] != bad)


def test_timed_out_evaluation_is_stopped_and_retried_then_failed(tmp_path, ray_local):
    ref = reference(tmp_path, 8)
    stuck, slow_once = ref[1]["arch"], ref[4]["arch"]
    cfg = parallel_cfg(2, queries=8, timeout_s=2.0, max_retries=1)
    summary, out = run(tmp_path, "timeout", cfg,
                       worker_evaluator=Faulty(str(tmp_path), hang_always=(stuck,), hang_once=(slow_once,)))
    by_arch = {r["arch"]: r for r in read_rows(out / "history.csv")}
    assert by_arch[stuck]["accuracy"] == ""
    assert by_arch[slow_once]["accuracy"] == ref[4]["accuracy"]
    (failure,) = summary["failures"]
    assert failure["arch"] == stuck and failure["attempts"] == 2 and "timed out after 2 s" in failure["reason"]


def _eval_workers_of(pid: int) -> list[int]:
    """Process ids of the EvalWorker actors descending from process `pid` (this test's Ray)."""
    parent: dict[int, int] = {}
    title: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def descends(p: int) -> bool:
        while p in parent and p > 1:
            p = parent[p]
            if p == pid:
                return True
        return False

    return [p for p, t in title.items() if t.startswith("ray::EvalWorker") and descends(p)]


def test_killed_worker_is_replaced_and_its_evaluation_retried(tmp_path, ray_local):
    ref = reference(tmp_path, 12)
    out = tmp_path / "killed"
    killed: list[int] = []
    most_busy = [0]  # the most evaluations seen running at once

    def busy_workers() -> list[int]:
        out = []
        for p in _eval_workers_of(os.getpid()):
            try:
                if "evaluate" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace"):
                    out.append(p)
            except OSError:  # it ended meanwhile
                pass
        return out

    def kill_one_busy_worker():
        # Progress, not time: once three results are in, kill a worker in the middle of its evaluation.
        while not killed:
            rows = read_rows(out / "history.csv") if (out / "history.csv").is_file() else []
            busy = busy_workers()
            most_busy[0] = max(most_busy[0], len(busy))
            if len(rows) >= 3 and busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
    killer.start()
    summary, _ = run(tmp_path, "killed", parallel_cfg(2, queries=12, max_retries=1),
                     worker_evaluator=Faulty(str(tmp_path), default_delay=0.5))
    killer.join(timeout=1)
    assert killed, "no worker was killed"
    assert most_busy[0] == 2  # two evaluations ran at once
    assert summary["failed_queries"] == 0  # the killed worker's evaluation ran again elsewhere
    assert read_rows(out / "history.csv") == ref


APP = ["device=raspi4", "searcher=lanas", "budget.queries=14", "seed=2", "evaluator.workers=2",
       "evaluator.num_cpus=0.5", "evaluator.delay_s=0.3", "ray.num_cpus=2", "ray.object_store_mb=80",
       "output.progress=false", "output.plot=false"]


def test_killed_driver_resumes_losing_and_repeating_nothing(tmp_path):
    ref, run_dir = tmp_path / "ref", tmp_path / "run"
    r = run_app(f"hydra.run.dir={ref}", *APP)
    assert r.returncode == 0, r.stderr
    hist = run_dir / "history.csv"
    kill_search_when([f"hydra.run.dir={run_dir}", *APP],
                     lambda: hist.is_file() and len(read_rows(hist)) >= 5)
    assert 5 <= len(read_rows(hist)) < 14 and not (run_dir / "summary.json").exists()
    r = run_app(f"hydra.run.dir={run_dir}", *APP, "resume=true")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert hist.read_bytes() == (ref / "history.csv").read_bytes()
    assert (run_dir / "pareto.csv").read_bytes() == (ref / "pareto.csv").read_bytes()


# --- Ray is optional ----------------------------------------------------------------------

def _python(code: str):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_one_worker_never_imports_ray(tmp_path):
    r = _python("import sys\nfrom pathlib import Path\nfrom hwnas.search import search\n"
                "from hwnas.search_config import make_search_cfg\n"
                f"search(make_search_cfg(queries=5), Path({str(tmp_path / 'one')!r}), progress=False, log=print)\n"
                "assert 'ray' not in sys.modules, 'ray was imported'\n")
    assert r.returncode == 0, r.stderr


def test_workers_without_ray_installed_is_one_clear_line(tmp_path):
    code = ("import sys\nsys.modules['ray'] = None  # as if Ray were not installed\n"
            "from hwnas.apps.search import main\n"
            f"sys.argv = ['hwnas-search', 'evaluator.workers=2', 'budget.queries=4', 'hydra.run.dir={tmp_path / 'x'}']\n"
            "main()\n")
    r = _python(code)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "pip install 'hwnas[distributed]'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("arg, expected", [
    ("evaluator.workers=0", "evaluator.workers=0: must be an integer >= 1"),
    ("evaluator.num_cpus=0", "evaluator.num_cpus=0.0: must be a number > 0"),
    ("evaluator.timeout_s=-1", "evaluator.timeout_s=-1.0: must be a number of seconds > 0"),
    ("evaluator.max_retries=-1", "evaluator.max_retries=-1: must be an integer >= 0"),
    ("ray.object_store_mb=10", "ray.object_store_mb=10: must be >= 80"),
])
def test_bad_parallel_option_is_one_line_before_any_work(tmp_path, arg, expected):
    r = run_app(f"hydra.run.dir={tmp_path / 'x'}", "evaluator.workers=2", "budget.queries=4", arg)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x" / "history.csv").exists()


TRAIN = ["space=nb201", "space.channels=4", "space.cells_per_stage=1", "dataset=digits", "evaluator=train",
         "evaluator.epochs=3", "evaluator.train_subset=300", "device=raspi4", "constraints.latency_ms=inf",
         "searcher=random", "budget.queries=4", "evaluator.workers=2", "ray.num_cpus=2",
         "ray.object_store_mb=80", "output.progress=false", "output.plot=false"]


def test_killed_driver_of_a_training_search_retrains_nothing_it_finished(tmp_path):
    """Trainings finished before the kill (told or not) are read from their checkpoints; the ones
    cut off go on from their last epoch (checkpoints/partial/); the history is an unbroken run's."""
    ref, run_dir = tmp_path / "ref", tmp_path / "run"
    r = run_app(f"hydra.run.dir={ref}", *TRAIN)
    assert r.returncode == 0, r.stderr
    ckpts = run_dir / "checkpoints"
    kill_search_when([f"hydra.run.dir={run_dir}", *TRAIN],
                     lambda: len(list(ckpts.glob("*.pt"))) >= 2 and any((ckpts / "partial").glob("*.pt")))
    before = {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")}
    assert 2 <= len(before) < 4 and not (run_dir / "summary.json").exists()
    r = run_app(f"hydra.run.dir={run_dir}", *TRAIN, "resume=true")
    assert r.returncode == 0, r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in ckpts.glob("*.pt")}
    assert all(after[name] == t for name, t in before.items())  # none trained again
    assert len(after) == 4 and not list((ckpts / "partial").glob("*.pt"))
    assert (run_dir / "history.csv").read_bytes() == (ref / "history.csv").read_bytes()
