"""Typed configuration of `hwnas-profile` (Hydra ConfigStore schemas, like hwnas/config.py).

conf/profile/ is the app's own config root: there `device=<name>` is a free table name, while
in conf/ `device` is the search app's config group of known devices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class RunnerConfig:
    name: str = MISSING  # ort_cpu | ort_cuda | ort_trt | tensorrt | remote (registered runners)
    graph_optimization: str = "all"  # onnxruntime: disable | basic | extended | all
    inter_op_threads: int = 1
    precision: str = "fp32"  # fp32 | fp16 (TensorRT paths)
    options: Dict[str, Any] = field(default_factory=dict)  # runner-specific (e.g. a remote agent's address)


@dataclass
class ProfileConfig:
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    device: Optional[str] = None  # table name; default cpu-ort-<cpu>-t<threads>-b<batch> (see apps/profile.py)
    space: str = "nb201"
    dataset: str = "cifar10"
    width_mult: Optional[float] = None  # spaces with a width (mbv3): the width profiled; null: the space's default
    threads: int = 1  # intra-op threads; 0: every core of this machine (the table's name says how many)
    batch: int = 1
    warmup: int = 20  # untimed runs before each model's timed runs
    repeats: int = 300  # timed runs per operation (ops take microseconds: many are cheap)
    e2e_repeats: int = 100  # timed runs per whole architecture (calibration and validation)
    calibrate: int = 40  # architectures timed end to end to fit the calibration (0: none)
    validate: int = 50  # other architectures timed end to end (twice) to score the table (0: none)
    seed: int = 0  # architectures drawn, weights, inputs
    # time a light and a heavy reference architecture in every round; scale each model by the speed at its level (timing.ReferenceClock)
    clock: bool = True
    # auto (layout for NB-201 on onnxruntime CPU at graph_optimization=all, else per_op) | linear (a*sum + b)
    # | per_op (per-op-class factors, ridge-shrunk to linear) | layout (+ cost per NCHWc layout conversion)
    calibration: str = "auto"
    recalibrate: bool = False  # refit calibration/validation from the table's stored timings; times nothing
    out_dir: Optional[str] = None  # default: the user's tables (hwnas/userdirs.py: user_tables_dir)
    overwrite: bool = False  # measure afresh instead of resuming an existing table
    progress: bool = True
    plot: bool = True  # <out_dir>/<device>.png: predicted vs measured


def store_profile_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="profile_schema", node=ProfileConfig)
    cs.store(group="schema/runner", name="base", node=RunnerConfig)
