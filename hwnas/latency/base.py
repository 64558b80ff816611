"""Latency sources: where a device's latency (and energy) of an architecture comes from.

Latency costs no accuracy query: it comes from a table (public benchmark column, a CSV, or a
table hwnas measured itself). Sources are registered by `kind` and built from the `device`
config group (see hwnas/config.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from hwnas.errors import DataError
from hwnas.registry import Registry
from hwnas.spaces.base import Arch, SearchSpace, require_tabular


class LatencySource(ABC):
    """Latency (ms) and optionally energy (mJ) of architectures on one device."""

    #: whether `energy()` returns values (a third objective / an energy constraint).
    has_energy: bool = False

    def __init__(self, space: SearchSpace, name: str):
        self.space = space
        self.name = name

    @abstractmethod
    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        """Latency in ms of each arch, shape (n,)."""

    def energy(self, archs: Sequence[Arch]) -> np.ndarray:
        raise NotImplementedError(f"device {self.name} has no energy figures")

    def describe(self) -> dict:
        """What the run's summary records about the device."""
        return {"name": self.name, "kind": type(self).__name__}


class IndexedSource(LatencySource):
    """A source holding one value per benchmark index (full tables of a tabular space)."""

    def __init__(self, space: SearchSpace, name: str, latency_ms: np.ndarray,
                 energy_mj: np.ndarray | None = None, origin: str | None = None):
        super().__init__(space, name)
        self._lat = np.asarray(latency_ms, dtype=float)
        self._energy = None if energy_mj is None else np.asarray(energy_mj, dtype=float)
        self.has_energy = self._energy is not None
        # A latency <= 0 makes an architecture look free (and feasible under any budget); refuse
        # it here, whatever the source, rather than let a search or an export report it.
        self._check("latency", "ms", self._lat, positive=True, origin=origin)
        if self._energy is not None:
            self._check("energy", "mJ", self._energy, positive=False, origin=origin)

    def _check(self, what: str, unit: str, values: np.ndarray, positive: bool, origin: str | None) -> None:
        ok = np.isfinite(values) & ((values > 0) if positive else (values >= 0))
        bad = np.nonzero(~ok)[0]
        if len(bad):
            i = int(bad[0])
            try:
                arch = f" ({self.space.from_index(i)})"
            except Exception:  # a space without a benchmark index: the index alone
                arch = ""
            where = f" from {origin}" if origin else ""
            raise DataError(f"device {self.name}{where}: {what} of architecture index {i}{arch} is {values[i]:g} {unit} "
                            f"({len(bad)} such); a {what} must be a finite number {'> 0' if positive else '>= 0'}")

    def _idx(self, archs: Sequence[Arch]) -> np.ndarray:
        return require_tabular(self.space, "a latency table with one value per architecture").indices(archs)

    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        return self._lat[self._idx(archs)]

    def energy(self, archs: Sequence[Arch]) -> np.ndarray:
        if self._energy is None:
            return super().energy(archs)
        return self._energy[self._idx(archs)]

    def all_latency(self) -> np.ndarray:
        """Latency of every architecture, in benchmark index order."""
        return self._lat

    def all_energy(self) -> np.ndarray | None:
        return self._energy


# kind -> factory(space, device_cfg, data_dir) -> LatencySource
LATENCY_SOURCES: Registry = Registry("device kind")
