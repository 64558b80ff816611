"""Accuracy looked up in a tabular benchmark (NAS-Bench-201, HW-NAS-Bench-360 tasks)."""
from __future__ import annotations

import numpy as np

from hwnas.config import DatasetConfig, EvaluatorConfig
from hwnas.data.nb201 import NB201_DATASETS, PI5_TASKS, load_accuracy, load_pi5
from hwnas.errors import ConfigError
from hwnas.evaluators.base import EVALUATORS, Evaluator
from hwnas.spaces.base import Arch, SearchSpace, is_tabular


class TabularEvaluator(Evaluator):
    tabular = True

    def __init__(self, space: SearchSpace, budget: int, metric: np.ndarray, delay_s: float = 0.0):
        super().__init__(space, budget, delay_s)
        self._metric = np.asarray(metric, dtype=float)

    def _evaluate(self, arch: Arch) -> float:
        return float(self._metric[self.space.index(arch)])

    def all_accuracy(self) -> np.ndarray:
        return self._metric


def tabular_metric(space: SearchSpace, dataset: DatasetConfig, data_dir) -> np.ndarray:
    """The benchmark's metric for every architecture, in index order."""
    if not is_tabular(space):
        raise ConfigError(f"evaluator 'tabular' looks accuracy up in a benchmark table; space {space.name!r} has "
                          f"none: use evaluator=train")
    if dataset.source == "nb201":
        if dataset.name not in NB201_DATASETS:
            raise ConfigError(f"unknown NAS-Bench-201 dataset {dataset.name!r}; valid: {', '.join(NB201_DATASETS)}")
        return load_accuracy(data_dir)[dataset.name].to_numpy(float)
    if dataset.source == "pi5":
        task = dataset.task or dataset.name
        if task not in PI5_TASKS:
            raise ConfigError(f"unknown HW-NAS-Bench-360 task {task!r}; valid: {', '.join(PI5_TASKS)}")
        # Accuracy does not depend on the framework that ran the network; read the onnx rows.
        return load_pi5(data_dir, "onnx", task)["accuracy"].to_numpy(float)
    if dataset.source == "files":
        # A training set (hwnas/datasets/): its accuracy comes from training, not from a table.
        raise ConfigError(f"dataset {dataset.name} has no benchmark table: use evaluator=train")
    raise ConfigError(f"unknown dataset source {dataset.source!r}; valid: nb201, pi5, files")


@EVALUATORS.register("tabular")
def make_tabular(space: SearchSpace, cfg: EvaluatorConfig, dataset: DatasetConfig, budget: int,
                 data_dir, seed: int = 0) -> TabularEvaluator:
    return TabularEvaluator(space, budget, tabular_metric(space, dataset, data_dir), cfg.delay_s)
