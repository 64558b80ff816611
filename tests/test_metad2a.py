"""searcher=metad2a and `hwnas-meta train-generator`: the target is never learnt from,
determinism, the cache, bad input, and the searcher protocol every searcher keeps.

Meta-training runs with tiny settings (a few steps of small networks): these tests check what
the tool does; docs/metad2a.md measures how well it searches.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_search_cfg, run_search_dir
from generative_checks import (
    check_determinism_budget_front,
    check_energy,
    check_no_budget_front,
    check_replay_mid_batch,
    check_sigkill_resume,
)

from hwnas.errors import ConfigError
from hwnas.meta.metad2a import D2ASettings
from hwnas.meta.transfer import d2a_model, split_sources

REPO = Path(__file__).resolve().parents[1]
TINY_SETTINGS = dict(hidden=8, steps=3, episodes=2, context_max=4, query_size=8, targets=2)
TINY = {f"meta_{k}": v for k, v in TINY_SETTINGS.items()} | {"n_generate": 40}


def tiny(**kw) -> D2ASettings:
    return D2ASettings(**{**TINY_SETTINGS, **kw})


def params(state: dict) -> dict:
    return {f"{m}.{k}": v.numpy() for m in ("predictor", "generator") for k, v in state[m].items()}


def same_params(a: dict, b: dict) -> bool:
    pa, pb = params(a), params(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def data_copy(tmp_path: Path, data_dir, name: str, accuracy=None, latency=None) -> Path:
    """A data directory like the public one, with one accuracy or latency column scaled."""
    out = tmp_path / name
    out.mkdir()
    for f, change in (("nb201_accuracy.csv", accuracy), ("nb201_latency_ms.csv", latency)):
        if change is None:
            (out / f).symlink_to(Path(data_dir) / f)
            continue
        df = pd.read_csv(Path(data_dir) / f)
        rng = np.random.default_rng(0)
        # A permuted column: the same values (valid ranges), other architectures good or fast.
        df[change] = df[change].to_numpy()[rng.permutation(len(df))]
        df.to_csv(out / f, index=False)
    return out


def meta_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "hwnas.apps.meta", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


# --- the target is never a source -----------------------------------------------------------
def test_training_data_for_a_target_holds_neither_its_task_nor_its_device(data_dir, monkeypatch):
    import hwnas.meta.metad2a as m

    seen = {}
    real = m.meta_train

    def spy(ops, tasks, devices, settings, seed, progress=None):
        seen.update(tasks=dict(tasks), devices=dict(devices))
        return real(ops, tasks, devices, settings, seed, progress)

    monkeypatch.setattr(m, "meta_train", spy)
    state, _, built = d2a_model(data_dir, tiny(), 0, "cifar100", "pixel3")
    assert built
    assert sorted(seen["tasks"]) == ["ImageNet16-120", "cifar10"] == state["tasks"]
    assert "pixel3" not in seen["devices"] and len(seen["devices"]) == 18 and state["devices"] == sorted(seen["devices"])
    from hwnas.data.nb201 import load_accuracy

    acc = load_accuracy(data_dir)
    # no column handed to training is the target's accuracy under another name
    for y in seen["tasks"].values():
        assert not np.array_equal(y, acc["cifar100"].to_numpy(float))


def test_perturbing_a_source_changes_the_model_perturbing_the_target_does_not(data_dir, tmp_path):
    # 96 generator episodes: every source device is drawn at least once (for this seed)
    settings = tiny(episodes=32)
    base, base_path, _ = d2a_model(data_dir, settings, 0, "cifar100", "pixel3")
    cases = {"target task": (dict(accuracy="cifar100"), False), "target device": (dict(latency="pixel3"), False),
             "source task": (dict(accuracy="cifar10"), True), "source device": (dict(latency="raspi4"), True)}
    for name, (change, differs) in cases.items():
        data = data_copy(tmp_path, data_dir, name.replace(" ", "_"), **change)
        state, path, built = d2a_model(data, settings, 0, "cifar100", "pixel3")
        assert built and path != base_path, name  # other data: another cache entry, trained again
        assert same_params(state, base) != differs, name


def test_the_run_records_its_sources_and_exclusions(tmp_path):
    summary, run = run_search_dir(tmp_path, "run", searcher="metad2a", dataset="cifar100", device="pixel3",
                                  queries=10, latency_ms=None, **TINY)
    meta = json.loads((run / "summary.json").read_text())["searcher_meta"]
    assert meta == summary["searcher_meta"]
    assert meta["target_task"] == "cifar100" and meta["target_device"] == "pixel3"
    assert meta["excluded_tasks"] == ["cifar100"] and meta["excluded_devices"] == ["pixel3"]
    assert meta["source_tasks"] == ["ImageNet16-120", "cifar10"] and len(meta["source_devices"]) == 18
    assert "pixel3" not in meta["source_devices"] and Path(meta["cache"]).is_file()
    # a target outside the benchmark's devices (the Pi 5) excludes only the task
    summary, _ = run_search_dir(tmp_path, "pi5", searcher="metad2a", dataset="cifar10", device="pi5_onnx",
                                queries=5, latency_ms=None, **TINY)
    assert summary["searcher_meta"]["excluded_devices"] == [] and summary["searcher_meta"]["excluded_tasks"] == ["cifar10"]


# --- determinism and the cache --------------------------------------------------------------
def test_same_seed_same_model_other_seed_other_model(data_dir, tmp_path, monkeypatch):
    states = []
    for home, seed in (("a", 0), ("b", 0), ("c", 1)):  # a fresh cache each: every model is trained
        monkeypatch.setenv("HWNAS_HOME", str(tmp_path / home))
        state, _, built = d2a_model(data_dir, tiny(), seed, "cifar10", "raspi4")
        assert built
        states.append(state)
    assert same_params(states[0], states[1]) and not same_params(states[0], states[2])


def test_cache_is_reused_and_rebuilt_when_settings_change(data_dir):
    _, path, built = d2a_model(data_dir, tiny(), 0, "ImageNet16-120", "fpga")
    assert built and path.is_file()
    _, again, built = d2a_model(data_dir, tiny(), 0, "ImageNet16-120", "fpga")
    assert again == path and not built
    _, other, built = d2a_model(data_dir, tiny(steps=4), 0, "ImageNet16-120", "fpga")
    assert built and other != path
    _, excl, built = d2a_model(data_dir, tiny(), 0, "ImageNet16-120", "fpga", exclude_devices=["eyeriss"])
    assert built and excl not in (path, other)
    path.write_bytes(b"not a torch file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, same, built = d2a_model(data_dir, tiny(), 0, "ImageNet16-120", "fpga")
    assert built and same == path and sum("meta-trained model" in str(w.message) for w in caught) == 1


def test_train_generator_command_builds_the_searchers_model(data_dir):
    sets = [a for k, v in TINY_SETTINGS.items() for a in ("--set", f"{k}={v}")]
    r = meta_cli("train-generator", "--task", "cifar10", "--device", "eyeriss", "--quiet", *sets)
    assert r.returncode == 0, r.stderr
    assert "excluded: cifar10" in r.stdout and "excluded: eyeriss" in r.stdout
    path = Path(r.stdout.split("trained: ")[1].split()[0])
    # the searcher with the same settings finds that very model in the cache
    _, found, built = d2a_model(data_dir, tiny(), 0, "cifar10", "eyeriss")
    assert found == path and not built


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, expect", [
    (("--task", "cifar-100"), "--task 'cifar-100': not a benchmark task"),
    (("--device", "pixel_3"), "--device 'pixel_3': not a benchmark device"),
    (("--exclude-device", "pixel_3"), "unknown benchmark device(s) to exclude: pixel_3"),
    (("--set", "stepz=3"), "--set 'stepz=3'"),
    (("--set", "steps=0"), "steps must be >= 1"),
])
def test_bad_train_generator_input_is_one_clear_line_and_exit_2(args, expect):
    r = meta_cli("train-generator", "--quiet", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in r.stderr


def test_a_space_that_is_not_nb201_is_one_clear_error(data_dir):
    from hwnas.search import build_setup, make_searcher
    from hwnas.spaces.mbv3 import MBV3Space

    cfg = make_search_cfg(searcher="metad2a", queries=5, **TINY)
    problem = build_setup(cfg).problem
    problem.space = MBV3Space()
    with pytest.raises(ConfigError, match="searcher=metad2a .* space 'mbv3' is not nb201"):
        make_searcher(cfg.searcher, problem, 0)


def test_an_unknown_exclusion_through_the_app_is_one_line_and_exit_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.search", "searcher=metad2a", "searcher.exclude_tasks=[cifar-10]",
                        "budget.queries=5", f"hydra.run.dir={tmp_path / 'r'}", "output.progress=false"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown benchmark task(s) to exclude: cifar-10" in lines[0]


def test_split_refuses_to_exclude_every_source(data_dir):
    with pytest.raises(ConfigError, match="every benchmark task is excluded"):
        split_sources(data_dir, "cifar10", None, exclude_tasks=["cifar100", "ImageNet16-120"])


# --- the searcher protocol ------------------------------------------------------------------
def test_seeded_determinism_budget_and_feasibility_under_a_latency_budget(tmp_path):
    check_determinism_budget_front(tmp_path, "metad2a", queries=25, **TINY)


def test_front_without_a_budget(tmp_path):
    check_no_budget_front(tmp_path, "metad2a", **TINY)


def test_energy_is_a_third_objective_and_its_budget_is_respected(tmp_path):
    check_energy(tmp_path, "metad2a", **TINY)


def test_replaying_a_prefix_that_ends_mid_batch_gives_the_same_run():
    check_replay_mid_batch("metad2a", **TINY)


def test_resume_after_sigkill(tmp_path):
    check_sigkill_resume(tmp_path, "metad2a", *[f"searcher.{k}={v}" for k, v in TINY.items()], budget=30, kill_at=15)


def test_first_batch_comes_from_the_meta_trained_prior_not_from_random(data_dir):
    """No random initial design: the first ask is the predictor's pick among generated cells, one
    per latency band, so it changes with the meta-trained model (another meta_seed) and not with
    nothing else; every pick is worth querying and new."""
    from hwnas.search import build_setup, make_searcher

    asks = []
    for meta_seed in (0, 0, 1):
        cfg = make_search_cfg(searcher="metad2a", queries=10, latency_ms=None, meta_seed=meta_seed, **TINY)
        s = build_setup(cfg)
        sr = make_searcher(cfg.searcher, s.problem, 0)
        batch = sr.ask()
        assert len(batch) == sr.config.batch_size and len(set(batch)) == len(batch)
        assert s.problem.worth_querying(batch).all()
        lat = s.problem.latency(batch)
        bands = np.searchsorted(np.concatenate([[-np.inf], sr.caps[:-1], [np.inf]]), lat, side="left") - 1
        assert len(set(bands.tolist())) == len(batch)  # one per band: spread along the latency axis
        asks.append(batch)
    assert asks[0] == asks[1] and asks[0] != asks[2]


def test_the_done_when_command_says_what_it_learnt_from(tmp_path):
    """hwnas-search searcher=metad2a dataset=cifar100 device=pixel3 (tiny meta-training here): its
    output and its summary name the sources, and cifar100 and pixel3 as excluded."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "hwnas.apps.search", "searcher=metad2a", "dataset=cifar100",
                        "device=pixel3", *[f"searcher.{k}={v}" for k, v in TINY.items()], "budget.queries=10",
                        f"hydra.run.dir={tmp_path / 'r'}", "output.progress=false", "output.plot=false"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert ("metad2a: meta-trained on tasks ImageNet16-120, cifar10 and 18 devices; excluded (the target): "
            "tasks cifar100, devices pixel3") in r.stdout
    meta = json.loads((tmp_path / "r" / "summary.json").read_text())["searcher_meta"]
    assert meta["excluded_tasks"] == ["cifar100"] and meta["excluded_devices"] == ["pixel3"]
