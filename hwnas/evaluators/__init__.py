"""Accuracy evaluators, registered by name (`evaluator=<name>`)."""
from hwnas.evaluators.base import EVALUATORS, Evaluator  # noqa: F401
from hwnas.evaluators.tabular import TabularEvaluator  # noqa: F401
from hwnas.evaluators.train import TrainEvaluator  # noqa: F401
