"""Searchers behind one ask/tell protocol, registered by name (`searcher=<name>`).

Every module in this package is imported so that each searcher registers itself: adding a
searcher is one file here plus one conf/searcher/<name>.yaml.
"""
import importlib
import pkgutil

from hwnas.searchers.base import SEARCHERS, Searcher, register_searcher  # noqa: F401

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")
