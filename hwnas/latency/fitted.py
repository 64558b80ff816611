"""`device.kind=fitted`: adopt a device from a few measured architectures.

Measure some NAS-Bench-201 architectures end to end on the device (50-100 is plenty: see
README.md, section "`device=fitted`: a latency table from a few measured architectures"), list
them in a CSV (`index` or `arch`, `latency_ms`, optionally `energy_mj`),
and hwnas fits non-negative per-op costs (hwnas/latency/additive_fit.py) and predicts the
other architectures. Measured architectures keep their measured values.

    hwnas-search device=fitted device.path=my_measurements.csv device.name=my_board
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwnas.config import DeviceConfig
from hwnas.errors import ConfigError, DataError
from hwnas.latency.additive_fit import (
    DEFAULT_FEATURES,
    AdditiveModel,
    cross_validate,
    fit_additive,
    n_features,
)
from hwnas.latency.base import LATENCY_SOURCES, IndexedSource
from hwnas.latency.sources import read_measurements
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.nb201 import NB201Space


class FittedSource(IndexedSource):
    """Latency of every architecture from an additive model fitted to a few measurements."""

    def __init__(self, space: SearchSpace, name: str, latency_ms: np.ndarray, energy_mj: np.ndarray | None,
                 model: AdditiveModel, energy_model: AdditiveModel | None, measured: np.ndarray, path: Path,
                 cv: dict | None = None):
        super().__init__(space, name, latency_ms, energy_mj, origin=f"the fit to {path}")
        self.model = model
        self.cv = cv
        self.energy_model = energy_model
        self.measured = measured
        self.path = path

    def describe(self) -> dict:
        d = {**super().describe(), "path": str(self.path), "measured": int(len(self.measured)),
             "latency_model": self.model.to_dict(), "latency_cv_fidelity": self.cv}
        if self.energy_model is not None:
            d["energy_model"] = self.energy_model.to_dict()
        return d


@LATENCY_SOURCES.register("fitted")
def make_fitted(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> FittedSource:
    """Predict every NAS-Bench-201 architecture from the measured ones in `cfg.path`."""
    if not isinstance(space, NB201Space):  # the additive features are NB-201's edge ops
        raise ConfigError(f"device kind 'fitted' learns NAS-Bench-201 op costs; space {space.name!r} "
                          f"needs a profiled table")
    if not cfg.path:
        raise ConfigError("device=fitted needs device.path=<file.csv> (columns: index or arch, latency_ms"
                          "[, energy_mj]: a few architectures measured on the device)")
    path = Path(os.path.expanduser(cfg.path))
    idx, lat, energy = read_measurements(space, path)
    need = n_features(DEFAULT_FEATURES)
    if len(idx) < need:
        raise DataError(f"{path}: {len(idx)} measured architectures; fitting {need} op costs needs at least "
                        f"{need} (50-100 random architectures give a good fit)")
    all_ops = np.array([a.ops for a in space.enumerate()], dtype=np.int64)
    model = fit_additive(all_ops[idx], lat, DEFAULT_FEATURES)
    # 5-fold out-of-fold fidelity: tells the user whether the additive model suits the device.
    cv = cross_validate(all_ops[idx], lat, DEFAULT_FEATURES) if len(idx) * 4 // 5 >= need else None
    latency = model.predict(all_ops)
    latency[idx] = lat
    energy_model, energy_all = None, None
    if energy is not None:
        energy_model = fit_additive(all_ops[idx], energy, DEFAULT_FEATURES)
        energy_all = energy_model.predict(all_ops)
        energy_all[idx] = energy
    # NNLS may give an architecture no cost at all (every feature it uses at 0): keep the
    # latencies positive so constraints and normalisation stay meaningful.
    floor = 0.5 * float(lat.min())
    latency = np.maximum(latency, floor)
    if energy_all is not None:
        energy_all = np.maximum(energy_all, 0.5 * float(energy.min()))
    return FittedSource(space, cfg.name, latency, energy_all, model, energy_model, idx, path, cv)
