"""What searcher=metad2a learns from: the benchmark's tasks and devices minus the target's.

Source tasks: NAS-Bench-201's cifar10, cifar100, ImageNet16-120 (nb201_accuracy.csv). The Pi 5
file's tasks are not used: its cifar100 is NB-201's CIFAR-100 again (Spearman 0.999), and darcy's
metric runs against its documentation (said to be an error, lower better, yet it rises with the
CIFAR accuracies, Spearman +0.5), so its direction is not known well enough to learn from
(docs/metad2a.md). Source devices: the columns of nb201_latency_ms.csv.
The target task (every source of that name) and the target device (its column) are left out
before anything is trained, and the model records the sources it used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.errors import ConfigError


def benchmark_tasks() -> tuple[str, ...]:
    from hwnas.data.nb201 import NB201_DATASETS

    return NB201_DATASETS


def task_scores(data_dir, names) -> dict[str, np.ndarray]:
    """name -> test accuracy of every architecture (index order), higher better."""
    from hwnas.data.nb201 import load_accuracy

    acc = load_accuracy(data_dir)
    return {name: acc[name].to_numpy(float) for name in names}


def split_sources(data_dir, target_task: str | None, target_device: str | None,
                  exclude_tasks=(), exclude_devices=()) -> dict:
    """The source tasks and devices, and the excluded ones, for a target.

    A target that is not a benchmark task or device (a user's dataset, a measured board) excludes
    nothing by itself; an explicit exclusion must name a benchmark task or device (a typo would
    exclude nothing) and is one clear error otherwise.
    """
    from hwnas.data.nb201 import latency_devices

    tasks, devices = list(benchmark_tasks()), latency_devices(data_dir)
    for what, given, valid in (("task", exclude_tasks, tasks), ("device", exclude_devices, devices)):
        unknown = [x for x in given if x not in valid]
        if unknown:
            raise ConfigError(f"metad2a: unknown benchmark {what}(s) to exclude: {', '.join(unknown)}; "
                              f"valid: {', '.join(valid)}")
    ex_t = sorted(set(exclude_tasks) | ({target_task} & set(tasks)))
    ex_d = sorted(set(exclude_devices) | ({target_device} & set(devices)))
    src_t = sorted(t for t in tasks if t not in ex_t)
    src_d = sorted(d for d in devices if d not in ex_d)
    if not src_t or not src_d:
        raise ConfigError(f"metad2a: every benchmark {'task' if not src_t else 'device'} is excluded; "
                          f"nothing to learn from")
    return {"tasks": src_t, "devices": src_d, "excluded_tasks": ex_t, "excluded_devices": ex_d}


def data_digests(data_dir) -> dict[str, str]:
    """sha256 of every data file the sources are read from (a changed file: another model)."""
    from hwnas.data.nb201 import ACCURACY_FILE, LATENCY_FILE
    from hwnas.data.paths import data_file
    from hwnas.meta.cache import file_digest

    files = [ACCURACY_FILE, LATENCY_FILE]
    return {f: file_digest(data_file(data_dir, f)) for f in files}


def d2a_model(data_dir, settings, seed: int, target_task: str | None, target_device: str | None,
              exclude_tasks=(), exclude_devices=(), progress: bool = False) -> tuple[dict, Path, bool]:
    """(state, cache path, built now) of the MetaD2A models for a target, from its sources only."""
    import torch

    from hwnas.data.nb201 import load_latency
    from hwnas.meta.cache import cache_key, cache_path, load_or_build
    from hwnas.meta.metad2a import FORMAT_VERSION, check_state, meta_train
    from hwnas.spaces.nb201 import NB201Space

    split = split_sources(data_dir, target_task, target_device, exclude_tasks, exclude_devices)
    # The key names the sources, not the target: two targets with the same sources share a model.
    key = cache_key({"kind": "metad2a", "format": FORMAT_VERSION, "data": data_digests(data_dir),
                     "settings": settings.to_dict(), "tasks": split["tasks"], "devices": split["devices"],
                     "seed": int(seed), "torch": torch.__version__})
    path = cache_path("metad2a", key)

    def build() -> dict:
        space = NB201Space(data_dir=data_dir)
        ops = np.array([a.ops for a in space.enumerate()], dtype=np.int64)
        lat = load_latency(data_dir)
        bar = None
        if progress:
            import sys

            from tqdm import tqdm

            bar = tqdm(total=settings.steps, desc="metad2a: meta-training on the source tasks and devices",
                       unit="step", file=sys.stderr, dynamic_ncols=True)
        try:
            state = meta_train(ops, task_scores(data_dir, split["tasks"]),
                               {d: lat[d].to_numpy(float) for d in split["devices"]}, settings, int(seed),
                               progress=(lambda _: bar.update(1)) if bar else None)
        finally:
            if bar is not None:
                bar.close()
        return state

    def check(state: dict) -> None:
        check_state(state)
        if state["tasks"] != split["tasks"] or state["devices"] != split["devices"]:
            raise ValueError("its sources differ from the key's")

    state, built = load_or_build(path, build, check)
    return state, path, built


def sources_record(state: dict, path: Path, split: dict) -> dict:
    """What a run records about the models it used (the same whether trained now or cached)."""
    return {"source_tasks": list(state["tasks"]), "source_devices": list(state["devices"]),
            "excluded_tasks": split["excluded_tasks"], "excluded_devices": split["excluded_devices"],
            "settings": dict(state["settings"]), "seed": int(state["seed"]), "cache": str(path),
            "final_loss": dict(state.get("loss", {}))}
