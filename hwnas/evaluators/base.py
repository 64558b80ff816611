"""Accuracy evaluators: each new architecture costs one query against a fixed budget."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np

from hwnas.errors import BudgetExhausted
from hwnas.registry import Registry
from hwnas.spaces.base import Arch, SearchSpace


class Evaluator(ABC):
    """Counts accuracy queries, never charges twice for one architecture, refuses to overspend.

    Subclasses implement `_evaluate(arch)`; `evaluate` does the bookkeeping (pymoo style).
    """

    #: True when the accuracy of every architecture is known (scoring against the truth).
    tabular: bool = False
    #: True when it trains networks: they have weights to export and a test accuracy.
    trains: bool = False
    #: whether to show per-evaluation progress (the search sets it)
    show_progress: bool = False

    def __init__(self, space: SearchSpace, budget: int, delay_s: float = 0.0):
        if budget < 1:
            raise ValueError(f"query budget must be >= 1, got {budget}")
        self.space = space
        self.budget = int(budget)
        self.delay_s = float(delay_s)
        self._seen: dict[Arch, float] = {}

    @property
    def used(self) -> int:
        return len(self._seen)

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def cached(self, arch: Arch) -> float | None:
        return self._seen.get(arch)

    def evaluate(self, arch: Arch) -> tuple[float, bool]:
        """(accuracy, whether this call spent a query)."""
        if arch in self._seen:
            return self._seen[arch], False
        if self.remaining <= 0:
            raise BudgetExhausted(f"query budget of {self.budget} spent; {arch} was not evaluated")
        acc = self.compute(arch)
        self._seen[arch] = acc
        return acc, True

    def compute(self, arch: Arch) -> float:
        """The evaluation itself, without the bookkeeping: what a parallel worker runs."""
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        return float(self._evaluate(arch))

    def record(self, arch: Arch, accuracy: float) -> None:
        """Count a query answered elsewhere: replayed from history.csv, or by a parallel worker.
        A failed evaluation is recorded as NaN: it spent its query and is never evaluated again."""
        if arch not in self._seen:
            if self.remaining <= 0:
                raise BudgetExhausted(f"history holds more queries than the budget of {self.budget}")
            self._seen[arch] = float(accuracy)

    def geometry_name(self, dataset_name: str) -> str:
        """The dataset name latency tables use for the networks this evaluator scores."""
        return dataset_name

    def attach_run_dir(self, run_dir) -> None:
        """Keep what evaluations produce (e.g. trained weights) in the search's run directory."""

    @abstractmethod
    def _evaluate(self, arch: Arch) -> float:
        """Accuracy (the dataset's metric) of one architecture."""

    def all_accuracy(self) -> np.ndarray:
        """Metric of every architecture in benchmark index order (tabular evaluators only)."""
        raise NotImplementedError(f"{type(self).__name__} does not know every architecture's accuracy")


# name -> factory(space, evaluator_cfg, dataset_cfg, budget, data_dir, seed=) -> Evaluator
EVALUATORS: Registry = Registry("evaluator")
