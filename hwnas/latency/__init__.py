"""Latency sources, registered by device kind (`device.kind` in the config)."""
import importlib
import pkgutil

from hwnas.latency.base import LATENCY_SOURCES, IndexedSource, LatencySource  # noqa: F401

# Import every module of this package so each kind registers itself (one file per kind).
for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
