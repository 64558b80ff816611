"""Real data sets for training evaluators, registered by name (`dataset=<name>`); see base.py."""
from hwnas.datasets.base import DATASETS, GEOMETRY, Splits, known_geometry, load_dataset  # noqa: F401
