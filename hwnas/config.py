"""Typed configuration of `hwnas-search`: one dataclass per Hydra config group.

Each group's YAML files in conf/ start from a schema stored here (ConfigStore group
`schema/<group>`), so a typo or a wrong type fails at start-up, before any work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SpaceConfig:
    name: str = MISSING
    channels: int = 16  # C of the first stage (NAS-Bench-201: 16)
    cells_per_stage: int = 5  # N (NAS-Bench-201: 5)


@dataclass
class DatasetConfig:
    name: str = MISSING  # cifar10 | cifar100 | ImageNet16-120 | ninapro | darcy ...
    source: str = "nb201"  # nb201: nb201_accuracy.csv; pi5: nb360_pi5.csv's `accuracy`
    task: Optional[str] = None  # nb360 task name when source=pi5
    maximize: bool = True  # False for error metrics (darcy: relative error)


@dataclass
class DeviceConfig:
    name: str = MISSING  # label used in the run dir and summary
    kind: str = MISSING  # benchmark | pi5 | csv | profiled (registered LatencySource kinds)
    column: Optional[str] = None  # benchmark: column of nb201_latency_ms.csv
    framework: Optional[str] = None  # pi5: onnx | litert | torchmobile
    task: Optional[str] = None  # pi5: whose network's latency (default: the dataset's task, else cifar100)
    path: Optional[str] = None  # csv: any CSV with index|arch, latency_ms[, energy_mj]; profiled: table JSON


@dataclass
class EvaluatorConfig:
    name: str = MISSING  # tabular
    delay_s: float = 0.0  # sleep per query: simulates a real (training) evaluation's cost


@dataclass
class ConstraintsConfig:
    latency_ms: Optional[float] = None  # feasible iff latency <= latency_ms
    energy_mj: Optional[float] = None  # feasible iff energy <= energy_mj (devices with energy)


@dataclass
class BudgetConfig:
    queries: int = 100  # accuracy queries (latency is free)


@dataclass
class OutputConfig:
    progress: bool = True  # progress bar
    plot: bool = True  # pareto.png


@dataclass
class SearchConfig:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    searcher: Any = MISSING  # one of the searcher dataclasses (hwnas/searchers/*)
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    seed: int = 0
    data_dir: Optional[str] = None  # else $HWNAS_DATA_DIR
    resume: bool = False  # continue the run dir's history.csv instead of starting over
    output: OutputConfig = field(default_factory=OutputConfig)


def store_schemas() -> None:
    cs = ConfigStore.instance()
    cs.store(name="search_schema", node=SearchConfig)
    cs.store(group="schema/space", name="base", node=SpaceConfig)
    cs.store(group="schema/dataset", name="base", node=DatasetConfig)
    cs.store(group="schema/device", name="base", node=DeviceConfig)
    cs.store(group="schema/evaluator", name="base", node=EvaluatorConfig)


def store_searcher_schema(name: str, node: type) -> None:
    ConfigStore.instance().store(group="schema/searcher", name=name, node=node)
