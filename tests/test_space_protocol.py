"""A second space implements the protocol and every searcher runs on it unchanged."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from hwnas.evaluators.base import Evaluator
from hwnas.latency.base import LatencySource
from hwnas.problem import SearchProblem
from hwnas.search_loop import run_search
from hwnas.searchers import SEARCHERS
from hwnas.spaces.base import Arch, SearchSpace


@dataclass(frozen=True)
class WidthArch(Arch):
    widths: tuple[int, ...]

    def __str__(self):
        return "-".join(map(str, self.widths))


class WidthSpace(SearchSpace):
    """Three layers, each 8/16/32/64 wide: a toy MLP space with no benchmark behind it."""

    name = "widths"
    choices = (8, 16, 32, 64)

    def parse(self, text):
        return WidthArch(tuple(int(x) for x in text.split("-")))

    def cardinalities(self):
        return [4, 4, 4]

    def to_vector(self, arch):
        return np.array([self.choices.index(w) for w in arch.widths])

    def from_vector(self, vec):
        return WidthArch(tuple(self.choices[int(np.clip(round(float(v)), 0, 3))] for v in vec))

    def build(self, arch, num_classes):
        layers, c = [], 16
        for w in arch.widths:
            layers += [torch.nn.Linear(c, w), torch.nn.ReLU()]
            c = w
        return torch.nn.Sequential(*layers, torch.nn.Linear(c, num_classes))

    def input_shape(self, dataset):
        return (16,)


class ParamLatency(LatencySource):
    def latency(self, archs):
        return np.array([sum(a.widths) / 10.0 for a in archs])


class ToyAccuracy(Evaluator):
    def _evaluate(self, arch):
        return 50.0 + 10 * np.log2(np.prod(arch.widths)) / 18.0


@pytest.mark.parametrize("name", ["random", "regularized_evolution", "nsga2", "nsga3"])
def test_every_baseline_searcher_runs_on_a_second_space(name):
    space = WidthSpace()
    problem = SearchProblem(space, ParamLatency(space, "toy"), latency_ms=10.0)
    searcher = SEARCHERS.get(name)
    evaluator = ToyAccuracy(space, budget=15)
    evals = run_search(problem, evaluator, searcher.cls(problem, searcher.config(), seed=0)).history
    assert len(evals) == 15 and len({e.arch for e in evals}) == 15
    assert all(e.feasible for e in evals)  # latency is free, so no query is spent on a bad one
    net = space.build(evals[0].arch, 3)
    assert net(torch.randn(2, 16)).shape == (2, 3)
