"""Search spaces, registered by name (`space=<name>` in the config)."""
from hwnas.registry import Registry
from hwnas.spaces.base import Arch, OpSpec, SearchSpace, TabularSpace, is_tabular, require_tabular  # noqa: F401
from hwnas.spaces.nb201 import NB201Arch, NB201Space  # noqa: F401

SPACES: Registry[type[SearchSpace]] = Registry("space")
SPACES.register("nb201")(NB201Space)
