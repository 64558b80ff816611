"""`device.kind=fewshot`: a new device's latency table from about ten measured architectures.

Measure the reference architectures (`hwnas-meta reference` lists them) and optionally a few
more on the device, list them in a CSV (`index` or `arch`, `latency_ms`), and a latency
predictor meta-trained across the public devices (hwnas/meta/fewshot.py, HELP-style) adapts to
them and predicts the whole space. Measured architectures keep their measured values.

    hwnas-meta reference --out my_board.csv            # fill in latency_ms on the device
    hwnas-search device=fewshot device.path=my_board.csv device.name=my_board
    hwnas-meta table --measured my_board.csv --name my_board   # or: a table, then device=my_board

The meta-trained model is cached in the user cache dir (hwnas/meta/cache.py), keyed by the data
file's digest, the settings, the excluded devices, the seed and the torch version. It never
learns from the target: a device whose name (or column) is a benchmark column is excluded, and
so is every device in `device.meta.exclude`; the run's summary records the sources used.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from hwnas.config import DeviceConfig, MetaConfig
from hwnas.errors import ConfigError, DataError
from hwnas.latency.base import LATENCY_SOURCES, IndexedSource
from hwnas.latency.sources import read_measurements
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.nb201 import NB201Space

SETTING_NAMES = tuple(f.name for f in fields(MetaConfig) if f.name not in ("seed", "exclude"))


def settings_of(meta) -> "MetaSettings":  # noqa: F821
    from hwnas.meta.fewshot import MetaSettings

    return MetaSettings(**{k: getattr(meta, k) for k in SETTING_NAMES})


def all_ops(space: NB201Space) -> np.ndarray:
    return np.array([a.ops for a in space.enumerate()], dtype=np.int64)


def reference_set(space: NB201Space, n_reference: int = MetaConfig.n_reference) -> list[tuple[int, str]]:
    """(index, arch string) of the architectures every few-shot device must have measured."""
    from hwnas.meta.fewshot import reference_indices

    return [(int(i), str(space.from_index(int(i)))) for i in reference_indices(all_ops(space), n_reference)]


def excluded_devices(data_dir, target: str | None, exclude=()) -> list[str]:
    """The benchmark devices a model for `target` must not learn from: the target's own column
    (when it is one) and `exclude` (each must be a benchmark device: a typo would exclude nothing)."""
    from hwnas.data.nb201 import latency_devices

    devices = latency_devices(data_dir)
    unknown = [d for d in exclude if d not in devices]
    if unknown:
        raise ConfigError(f"device.meta.exclude: unknown benchmark device(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(devices)}")
    out = set(exclude)
    if target in devices:
        out.add(target)
    return sorted(out)


def meta_model(data_dir, meta, exclude: list[str]) -> tuple[dict, Path, bool]:
    """(state, cache path, built now) of the model meta-trained on every benchmark device but `exclude`."""
    import torch

    from hwnas.data.nb201 import LATENCY_FILE, latency_devices, load_latency
    from hwnas.data.paths import data_file
    from hwnas.meta.cache import cache_key, cache_path, file_digest, load_or_build
    from hwnas.meta.fewshot import FORMAT_VERSION, check_state, meta_train

    settings = settings_of(meta)
    exclude = sorted(set(exclude))
    sources = [d for d in latency_devices(data_dir) if d not in exclude]
    if not sources:
        raise ConfigError("device=fewshot: every benchmark device is excluded; nothing to learn from")
    key = cache_key({"kind": "fewshot_latency", "format": FORMAT_VERSION,
                     "data": file_digest(data_file(data_dir, LATENCY_FILE)), "settings": settings.to_dict(),
                     "exclude": exclude, "seed": int(meta.seed), "torch": torch.__version__})
    path = cache_path("fewshot_latency", key)

    def build() -> dict:
        space = NB201Space(data_dir=data_dir)
        lat = load_latency(data_dir)
        state = meta_train(all_ops(space), {d: lat[d].to_numpy(float) for d in sources}, settings, int(meta.seed))
        state["excluded"] = exclude
        return state

    def check(state: dict) -> None:
        check_state(state)
        if sorted(state.get("excluded", [])) != exclude or set(state["sources"]) & set(exclude):
            raise ValueError("its excluded devices differ from the key's")

    state, built = load_or_build(path, build, check)
    return state, path, built


def check_references(space: NB201Space, path: Path, idx: np.ndarray, reference: list[int]) -> None:
    missing = [int(r) for r in reference if int(r) not in set(idx.tolist())]
    if missing:
        listed = "; ".join(f"index {i} {space.from_index(i)}" for i in missing)
        raise DataError(f"{path}: {len(missing)} of the {len(reference)} reference architectures are not measured "
                        f"({listed}); `hwnas-meta reference` lists them all")


class FewshotSource(IndexedSource):
    """Latency of every architecture from the meta-trained predictor adapted to a few measurements."""

    def __init__(self, space, name, latency_ms, measured: np.ndarray, path: Path, state: dict, cache: Path):
        super().__init__(space, name, latency_ms, origin=f"the few-shot prediction from {path}")
        self.measured = measured
        self.path = path
        self.state = state
        self.cache = cache

    def describe(self) -> dict:
        s = self.state
        return {**super().describe(), "path": str(self.path), "measured": int(len(self.measured)),
                "meta": {"sources": list(s["sources"]), "excluded": list(s.get("excluded", [])),
                         "reference": list(s["reference"]), "settings": dict(s["settings"]),
                         "seed": int(s["seed"]), "cache": str(self.cache)}}


def fewshot_latency(space: NB201Space, name: str, path: Path, meta, data_dir, column: str | None = None):
    """(latency of every architecture, measured indices, model state, cache path) for the CSV at `path`."""
    from hwnas.meta.fewshot import predict, reference_indices

    idx, lat, _ = read_measurements(space, path)
    ops = all_ops(space)
    # The references depend on the space alone: check the CSV before any meta-training.
    check_references(space, path, idx, [int(i) for i in reference_indices(ops, meta.n_reference)])
    exclude = excluded_devices(data_dir, column or name, list(meta.exclude))
    state, cache, _ = meta_model(data_dir, meta, exclude)
    latency = predict(state, ops, idx, lat)
    latency[idx] = lat
    return latency, idx, state, cache


@LATENCY_SOURCES.register("fewshot")
def make_fewshot(space: SearchSpace, cfg: DeviceConfig, dataset: str, data_dir) -> FewshotSource:
    """Predict every NAS-Bench-201 architecture from the reference set (+ a few) measured in `cfg.path`."""
    if not isinstance(space, NB201Space):  # meta-trained on NAS-Bench-201's public devices
        raise ConfigError(f"device kind 'fewshot' predicts NAS-Bench-201 latencies; space {space.name!r} "
                          f"needs a profiled table")
    if not cfg.path:
        raise ConfigError("device=fewshot needs device.path=<file.csv> (columns: index or arch, latency_ms: "
                          "the reference architectures that `hwnas-meta reference` lists, measured on the device)")
    path = Path(os.path.expanduser(cfg.path))
    latency, idx, state, cache = fewshot_latency(space, cfg.name, path, cfg.meta, data_dir, cfg.column)
    return FewshotSource(space, cfg.name, latency, idx, path, state, cache)
