"""Runners that time ONNX models on a target, registered by name (`runner=<name>`).

Every module here is imported so each runner registers itself: a new runner is one file.
"""
import importlib
import pkgutil

from hwnas.profiling.runners.base import RUNNERS, Runner, Timing, TimingSettings  # noqa: F401

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")
