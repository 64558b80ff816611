"""Name -> factory registries, so a new space/searcher/runner is one file plus one config."""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Mapping, TypeVar

from hwnas.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, lazy: Mapping[str, str] | None = None):
        """lazy: name -> module that registers it when imported; imported on the first get(name),
        so listing names or starting an app does not import heavy modules (torch)."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = dict(lazy or {})

    def declare(self, name: str, module: str) -> None:
        """`name` is registered by importing `module` (on first use)."""
        self._lazy[name] = module

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items and name in self._lazy:
            importlib.import_module(self._lazy[name])
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._lazy
