"""One search, end to end: build the problem from the config, run the loop, write the run dir."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.config import SearchConfig, latency_budget
from hwnas.data.paths import resolve_data_dir
from hwnas.errors import ConfigError
from hwnas.evaluators import EVALUATORS, Evaluator
from hwnas.io import clean_stale_temps, write_json_atomic
from hwnas.latency.base import IndexedSource
from hwnas.latency.sources import make_latency_source
from hwnas.parallel.recipe import check_parallel, uses_ray
from hwnas.pareto import FrontScorer
from hwnas.problem import Evaluation, SearchProblem
from hwnas.rundir import (
    CONFIG,
    FailureLog,
    HistoryWriter,
    config_record,
    read_history,
    write_config,
    write_rows_csv,
)
from hwnas.search_loop import front_of, run_search
from hwnas.searchers import SEARCHERS, Searcher
from hwnas.spaces import SPACES, SearchSpace, TabularSpace, make_space
from hwnas.spaces.base import sample_distinct


@dataclass
class Setup:
    space: SearchSpace
    problem: SearchProblem
    evaluator: Evaluator
    scorer: FrontScorer | None
    data_dir: Path


def build_setup(cfg: SearchConfig) -> Setup:
    """Everything a search needs, validated; raises HwnasError on any user mistake."""
    if cfg.budget.queries < 1:
        raise ConfigError(f"budget.queries must be >= 1, got {cfg.budget.queries}")
    if cfg.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {cfg.seed}")
    check_parallel(cfg)
    if uses_ray(cfg):
        from hwnas.parallel.ray_runtime import import_ray

        import_ray()  # not installed: say so now, before any work
    # The benchmark files index a tabular space; a space without one (mbv3) needs none.
    needs_data = issubclass(SPACES.get(cfg.space.name), TabularSpace)
    data_dir = resolve_data_dir(cfg.data_dir) if needs_data or cfg.data_dir else None
    space = make_space(cfg.space, data_dir)
    # the evaluator first: it refuses a space it cannot score before a device table is measured
    evaluator = EVALUATORS.get(cfg.evaluator.name)(space, cfg.evaluator, cfg.dataset, cfg.budget.queries, data_dir,
                                                    seed=cfg.seed)
    source = make_latency_source(space, cfg.device, evaluator.geometry_name(cfg.dataset.name), data_dir)
    c = cfg.constraints
    if c.energy_mj is not None and not c.energy_mj > 0:
        raise ConfigError(f"constraints.energy_mj must be > 0, got {c.energy_mj}")
    latency_ms = latency_budget(c, cfg.device, space_latencies(space, source))
    if c.energy_mj is not None and not source.has_energy:
        raise ConfigError(f"constraints.energy_mj is set but device {cfg.device.name!r} has no energy "
                          f"figures; devices with energy: pi5_onnx, pi5_litert, pi5_torchmobile")
    problem = SearchProblem(space, source, latency_ms, c.energy_mj, cfg.dataset.maximize, task=cfg.dataset.name,
                            device=cfg.device.column or cfg.device.name, data_dir=data_dir)
    scorer = None
    if isinstance(source, IndexedSource):
        lat, energy = source.all_latency(), source.all_energy()
        _check_feasible(problem, lat, energy, cfg)
        n = len(problem.feasible_pool())
        if cfg.budget.queries > n:  # a search could never spend the budget: say so now, not after hours
            raise ConfigError(f"budget.queries={cfg.budget.queries} but only {n} architectures meet the constraints "
                              f"on device {cfg.device.name!r}; use budget.queries<={n}")
        if evaluator.tabular:
            scorer = FrontScorer(problem.error(evaluator.all_accuracy()), lat, energy,
                                 latency_ms, c.energy_mj if source.has_energy else None)
    return Setup(space, problem, evaluator, scorer, data_dir)


QUANTILE_SAMPLE = 1000  # architectures a latency quantile is estimated on where the space has no index


def space_latencies(space: SearchSpace, source):
    """What a latency-quantile budget is taken over: every architecture's latency (a source with
    one value per benchmark index), else the latencies of QUANTILE_SAMPLE distinct architectures
    drawn with a fixed seed (the same budget for every search seed, so runs compare)."""
    if isinstance(source, IndexedSource):
        return source.all_latency
    return lambda: source.latency(sample_distinct(space, QUANTILE_SAMPLE, seed=0))


def _check_feasible(problem: SearchProblem, lat: np.ndarray, energy: np.ndarray | None, cfg: SearchConfig) -> None:
    ok = np.ones(len(lat), dtype=bool)
    if problem.latency_budget is not None:
        ok &= lat <= problem.latency_budget
    if problem.energy_budget is not None and energy is not None:
        ok &= energy <= problem.energy_budget
    if ok.any():
        return
    msg = f"no architecture meets the constraints on device {cfg.device.name!r}: "
    parts = []
    if problem.latency_budget is not None:
        i = int(np.argmin(lat))
        parts.append(f"latency_ms={problem.latency_budget:g} but the smallest latency is {lat[i]:.4g} ms "
                     f"({problem.space.from_index(i)})")
    if problem.energy_budget is not None and energy is not None:
        parts.append(f"energy_mj={problem.energy_budget:g} but the smallest energy is {energy.min():.4g} mJ")
    raise ConfigError(msg + "; ".join(parts) + ". Raise the budget")


def make_searcher(cfg_searcher: Any, problem: SearchProblem, seed: int, progress: bool = False) -> Searcher:
    """The searcher named by the config, with its typed config (a dataclass or a mapping)."""
    if is_dataclass(cfg_searcher):
        name, conf = cfg_searcher.name, cfg_searcher
    else:
        params = dict(cfg_searcher)
        name = params.get("name")
        entry = SEARCHERS.get(name)
        try:
            conf = entry.config(**params)
        except TypeError as exc:
            raise ConfigError(f"bad option for searcher {name!r}: {exc}") from None
    return SEARCHERS.get(name).cls(problem, conf, seed, progress)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix[:-1]} ({a!r} then, {b!r} now)"]


def _config_diffs(cfg_path: Path, record: dict) -> list[str]:
    """How the config recorded at `cfg_path` differs from `record` (empty: the same)."""
    try:
        old = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        old = None
    return _diff(old, record) if isinstance(old, dict) else ["config.json unreadable"]


def prepare_run_dir(run_dir: Path, cfg: SearchConfig, space: SearchSpace) -> list:
    """Check the run dir against `resume`; return the history to replay (maybe empty)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(run_dir)  # half-written files of a killed earlier run
    record = config_record(cfg)
    hist = run_dir / "history.csv"
    cfg_path = run_dir / CONFIG
    replay: list = []
    if cfg.resume and hist.is_file():
        if cfg_path.is_file():
            diffs = _config_diffs(cfg_path, record)
            if diffs:
                raise ConfigError(f"cannot resume {run_dir}: it was made with another config: "
                                  f"{'; '.join(diffs)}. Use the same overrides, or start over without resume=true")
        replay = read_history(hist, space)
    elif (run_dir / "summary.json").is_file() and cfg_path.is_file():
        # A finished run of another config in the same folder (the folder name leaves out e.g.
        # space.channels and searcher options): never overwrite it silently.
        diffs = _config_diffs(cfg_path, record)
        if diffs:
            raise ConfigError(f"{run_dir} holds a finished search made with another config: {'; '.join(diffs)}. "
                              f"Pass hydra.run.dir=<another folder>, or delete this one to replace it")
    elif hist.is_file() and not (run_dir / "summary.json").is_file() and read_history(hist, space):
        raise ConfigError(f"{run_dir} holds an unfinished search ({len(read_history(hist, space))} queries in "
                          f"history.csv): pass resume=true to continue it, or delete the folder to start over")
    for name in ("summary.json", "pareto.csv", "pareto.png"):
        (run_dir / name).unlink(missing_ok=True)  # stale results of an earlier run
    write_config(run_dir, record)
    return replay


def search(cfg: SearchConfig, run_dir: Path, progress: bool = True, log=print, worker_evaluator=None) -> dict:
    """Run one search into `run_dir` and return its summary.

    `worker_evaluator`: with Ray workers, a picklable callable that builds each worker's
    evaluator (an Evaluator of your own); by default the one the config names."""
    t0 = time.perf_counter()
    s = build_setup(cfg)
    searcher = make_searcher(cfg.searcher, s.problem, cfg.seed, progress and cfg.output.progress)
    bind = getattr(searcher, "bind_run", None)  # a searcher that trains on the data itself (dash)
    if bind is not None:
        bind(s.evaluator, run_dir)  # before the run dir is touched: it may refuse the config
    replay = prepare_run_dir(run_dir, cfg, s.space)
    s.evaluator.attach_run_dir(run_dir)
    s.evaluator.show_progress = progress and cfg.output.progress
    if replay:
        log(f"resuming {run_dir}: replaying {len(replay)} queries from history.csv")
    writer = HistoryWriter(run_dir / "history.csv", s.problem.use_energy, keep_rows=len(replay))
    failures = FailureLog(run_dir, keep_queries=len(replay))
    bar = _progress_bar(cfg.budget.queries, progress and cfg.output.progress)
    indices: list[int] = []
    answered: list[bool] = []  # False: the evaluation failed (it has no accuracy to score)
    best = [None]

    def on_query(q: int, ev: Evaluation, replayed: bool) -> None:
        idx = s.space.index(ev.arch)
        indices.append(idx)
        answered.append(not ev.failed)
        if not replayed:
            writer.append(q, ev, idx)
        if ev.feasible and (best[0] is None or ev.error < best[0].error):
            best[0] = ev
        if bar is not None:
            post = {"best": f"{best[0].accuracy:.2f}" if best[0] else "-"}
            if s.scorer is not None:
                hv = s.scorer.hypervolume_of(np.array([i for i, ok in zip(indices, answered) if ok]))
                post["hv_ratio"] = f"{hv / s.scorer.true_hv:.3f}" if s.scorer.true_hv else "-"
            bar.set_postfix(post, refresh=False)
            bar.update(1)

    try:
        if uses_ray(cfg):
            result = _run_on_ray(cfg, s, searcher, run_dir, replay, on_query, failures, log, worker_evaluator)
        else:
            result = run_search(s.problem, s.evaluator, searcher, replay, on_query)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    describe = getattr(searcher, "describe", None)  # searcher=metad2a: the sources its models learnt from
    return finish(cfg, s, run_dir, result.history, indices, time.perf_counter() - t0, log, result.reason,
                  searcher_meta=describe() if describe else None)


def _run_on_ray(cfg: SearchConfig, s: Setup, searcher: Searcher, run_dir: Path, replay, on_query,
                failures: FailureLog, log, worker_evaluator=None):
    """The loop with up to evaluator.workers evaluations at once on Ray actors."""
    from hwnas.parallel.loop import run_parallel_search
    from hwnas.parallel.pool import WorkerPool
    from hwnas.parallel.ray_runtime import ray_instance
    from hwnas.parallel.recipe import EvaluatorRecipe

    e = cfg.evaluator
    recipe = worker_evaluator or EvaluatorRecipe(cfg, None if s.data_dir is None else str(s.data_dir),
                                                 str(run_dir.resolve()))

    def on_failure(q: int, arch, attempts: int, reason: str) -> None:
        failures.append(q, arch, attempts, reason)
        log(f"warning: query {q} ({arch}) failed {attempts} time(s), recorded as failed: {reason}")

    with ray_instance(cfg.ray) as ray:
        where = f"the Ray cluster at {cfg.ray.address}" if cfg.ray.address else "a local Ray instance"
        log(f"evaluating on {e.workers} Ray worker(s) of {e.num_cpus:g} CPU(s)"
            f"{f' and {e.num_gpus:g} GPU(s)' if e.num_gpus else ''} each, on {where} "
            f"({ray.cluster_resources().get('CPU', 0):g} CPUs)")
        pool = WorkerPool(recipe, e.workers, e.num_cpus, e.num_gpus, e.timeout_s, e.max_retries)
        try:
            return run_parallel_search(s.problem, s.evaluator, searcher, pool, replay, on_query,
                                       on_failure=on_failure)
        finally:
            pool.close()


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="query", desc="search", dynamic_ncols=True, file=sys.stderr)


def finish(cfg: SearchConfig, s: Setup, run_dir: Path, evals: list[Evaluation], indices: list[int],
           wall_s: float, log=print, stop_reason: str | None = None, searcher_meta: dict | None = None) -> dict:
    front = front_of(evals)
    test = _front_test_accuracy(s.evaluator, [evals[i].arch for i in front], log)
    write_rows_csv(run_dir / "pareto.csv", s.problem.use_energy,
                   [(i + 1, evals[i], indices[i]) for i in front], {"test_accuracy": test} if test else None)
    score = None
    if s.scorer is not None:  # a failed query has no accuracy to score
        score = s.scorer.score(np.array([i for i, e in zip(indices, evals) if not e.failed], dtype=np.int64))
    feas = [e for e in evals if e.feasible]
    best = min(feas, key=lambda e: e.error) if feas else None
    summary = {
        "searcher": cfg.searcher.name if not isinstance(cfg.searcher, dict) else cfg.searcher["name"],
        "seed": cfg.seed,
        "space": cfg.space.name,
        "dataset": cfg.dataset.name,
        "device": cfg.device.name,
        "evaluator": cfg.evaluator.name,
        "budget": cfg.budget.queries,
        "constraints": {"latency_ms": s.problem.latency_budget, "energy_mj": cfg.constraints.energy_mj},
        "objectives": ["error", "latency_ms"] + (["energy_mj"] if s.problem.use_energy else []),
        "queries": len(evals),
        "stop_reason": stop_reason,
        "failed_queries": sum(e.failed for e in evals),
        "feasible_queries": len(feas),
        "best_feasible_accuracy": best.accuracy if best else None,
        "best_feasible_arch": str(best.arch) if best else None,
        "pareto_size": len(front),
        "hypervolume": score.hypervolume if score else None,
        "hv_ratio": score.hv_ratio if score else None,
        "front_regret": score.front_regret if score else None,
        "wall_s": round(wall_s, 3),
        "data_dir": None if s.data_dir is None else str(s.data_dir),
    }
    meta = s.problem.source.describe().get("meta")  # device=fewshot: which devices its predictor learnt from
    if meta is not None:
        summary["device_meta"] = meta
    if searcher_meta is not None:
        summary["searcher_meta"] = searcher_meta
    if s.evaluator.trains:
        summary["training"] = {"checkpoints": "checkpoints/", "data_digest": s.evaluator.data_digest,
                               "input_shape": list(s.evaluator.input_shape), "num_classes": s.evaluator.num_classes,
                               "front_test_accuracy": {str(evals[i].arch): t for i, t in zip(front, test or [])}}
    failures = FailureLog.read(run_dir, {q + 1 for q, e in enumerate(evals) if e.failed})
    if failures:
        summary["failures"] = failures
    if uses_ray(cfg):
        summary["workers"] = cfg.evaluator.workers
    if cfg.output.plot:
        _plot(cfg, s, run_dir, evals, front)
    write_json_atomic(run_dir / "summary.json", summary)  # last: marks the run complete
    _report(summary, evals, front, run_dir, log, test)
    return summary


def _front_test_accuracy(evaluator: Evaluator, archs: list, log) -> list[float] | None:
    """Test accuracy of the front's trained networks: measured once, at the end, never searched on."""
    if not evaluator.trains or not archs:
        return None
    log(f"test accuracy of the {len(archs)} front architecture(s) (the search saw validation accuracy only)")
    return [evaluator.test_accuracy(a) for a in archs]


def _plot(cfg: SearchConfig, s: Setup, run_dir: Path, evals: list[Evaluation], front: list[int]) -> None:
    from hwnas.plots import plot_front

    extra = {}
    if s.scorer is not None:
        tf = s.scorer.true_front()
        acc_all = s.evaluator.all_accuracy()
        extra = dict(true_latency=s.scorer.latency[tf], true_accuracy=acc_all[tf],
                     all_latency=s.scorer.latency, all_accuracy=acc_all)
    lat = np.array([e.latency_ms for e in evals])
    acc = np.array([e.accuracy for e in evals])
    feas = np.array([e.feasible for e in evals], dtype=bool)
    title = (f"{cfg.searcher.name} on {cfg.space.name}/{cfg.dataset.name} x {cfg.device.name}, "
             f"{len(evals)} queries, seed {cfg.seed}")
    plot_front(run_dir / "pareto.png", lat, acc, feas, np.array(front, dtype=int), title=title,
               metric="accuracy (%)" if cfg.dataset.maximize else f"{cfg.dataset.name} error",
               maximize=cfg.dataset.maximize, latency_budget=s.problem.latency_budget, **extra)


def _report(summary: dict, evals: list[Evaluation], front: list[int], run_dir: Path, log,
            test: list[float] | None = None) -> None:
    log(f"run dir: {run_dir}")
    def fmt(value, spec: str) -> str:  # summary.json keeps full precision; the screen is for reading
        return "-" if value is None else format(value, spec)

    log(f"{summary['queries']} queries, best feasible accuracy {fmt(summary['best_feasible_accuracy'], '.2f')}, "
        f"hv_ratio {fmt(summary['hv_ratio'], '.3f')}, front_regret {fmt(summary['front_regret'], '.3f')}")
    sm = summary.get("searcher_meta")
    if sm and "source_tasks" in sm:  # a transfer searcher: say what it learnt from, and what never
        log(f"{summary['searcher']}: meta-trained on tasks {', '.join(sm['source_tasks'])} and "
            f"{len(sm['source_devices'])} devices; excluded (the target): tasks "
            f"{', '.join(sm['excluded_tasks']) or 'none'}, devices {', '.join(sm['excluded_devices']) or 'none'}")
    log(f"Pareto front ({len(front)} architectures):")
    if test:  # trained: the search ranked by validation accuracy; test accuracy is the honest figure
        log(f"  {'latency_ms':>10}  {'val_acc':>8}  {'test_acc':>8}  arch")
        for i, t in zip(front, test):
            log(f"  {evals[i].latency_ms:10.3g}  {evals[i].accuracy:8.2f}  {t:8.2f}  {evals[i].arch}")
        return
    log(f"  {'latency_ms':>10}  {'accuracy':>8}  arch")
    for i in front:
        e = evals[i]
        log(f"  {e.latency_ms:10.3g}  {e.accuracy:8.2f}  {e.arch}")
