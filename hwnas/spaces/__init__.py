"""Search spaces, registered by name (`space=<name>` in the config).

Adding a space: its module (a SearchSpace subclass, plus the capabilities it has: TabularSpace,
ProfilableSpace) that ends with `SPACES.register("<name>")(<Class>)`, one line in SPACE_MODULES,
and hwnas/conf/space/<name>.yaml (its SpaceConfig fields: the class's `params`).
"""
from hwnas.registry import Registry
from hwnas.spaces.base import (  # noqa: F401
    Arch,
    OpSpec,
    ProfilableSpace,
    SearchSpace,
    TabularSpace,
    is_profilable,
    is_tabular,
    require_profilable,
    require_tabular,
)

# name -> module that registers it (imported on first SPACES.get)
SPACE_MODULES = {"nb201": "hwnas.spaces.nb201", "mbv3": "hwnas.spaces.mbv3", "dash": "hwnas.spaces.dash"}
SPACES: Registry[type[SearchSpace]] = Registry("space", lazy=SPACE_MODULES)

from hwnas.spaces.nb201 import NB201Arch, NB201Space  # noqa: E402,F401  (re-exported; registers nb201)


def make_space(cfg, data_dir=None) -> SearchSpace:
    """The space of a `space` config (SpaceConfig, or its dict from a run's config.json)."""
    name = cfg.get("name") if isinstance(cfg, dict) else cfg.name
    return SPACES.get(name).from_config(cfg, data_dir)
