"""Real data sets for training evaluators: one loader per `dataset=<name>`, each returning
checked train/validation/test arrays, and the geometry (input shape, classes) every dataset
name stands for.

Loaders read local files only (no download at run time). Bad data raises DataError before
any training starts.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.registry import Registry


@dataclass(frozen=True)
class Splits:
    """A data set ready to train on: images float32 (N, C, H, W) standardised, labels int64.

    `val` is what a search sees; `test` is touched only for the final front.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    def digest(self) -> str:
        """A short hash of the arrays: a run records it, so resuming on other data is refused."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


# name -> loader(dataset_cfg, seed) -> Splits
DATASETS: Registry[Callable[..., Splits]] = Registry("dataset", lazy={
    "digits": "hwnas.datasets.digits",
    "fashion_mnist": "hwnas.datasets.fashion_mnist",
    "image_folder": "hwnas.datasets.image_folder",
    "npz": "hwnas.datasets.npz",
    "osuleaf": "hwnas.datasets.sequences",
    "plaid": "hwnas.datasets.sequences",
    "fashion_mnist_seq": "hwnas.datasets.sequences",
})

# (C, H, W), classes of every dataset whose networks have a fixed geometry: the public
# benchmarks' tasks and the built-in training sets. image_folder and npz take theirs from
# the files (see `geometry`).
GEOMETRY: dict[str, tuple[tuple[int, int, int], int]] = {
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "ImageNet16-120": ((3, 16, 16), 120),
    "ninapro": ((1, 16, 52), 18),
    "digits": ((1, 8, 8), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    # sequences, stored as (C, 1, L) (hwnas/datasets/sequences.py)
    "osuleaf": ((1, 1, 427), 6),
    "plaid": ((1, 1, 1344), 11),
    "fashion_mnist_seq": ((1, 1, 784), 10),
}


_KEY = re.compile(r"^(.+)-(\d+)x(\d+)x(\d+)-c(\d+)$")


def geometry_key(name: str, input_shape: Sequence[int], num_classes: int) -> str:
    """The name latency tables use for networks of this geometry: the dataset's own name when it
    has that fixed geometry, else `<name>-<C>x<H>x<W>-c<classes>` (image_folder, npz, a resized
    set), which `known_geometry` reads back, so `hwnas-profile dataset=<key>` profiles it too."""
    shape = tuple(int(d) for d in input_shape)
    if GEOMETRY.get(name) == (shape, int(num_classes)):
        return name
    c, h, w = shape
    return f"{name}-{c}x{h}x{w}-c{int(num_classes)}"


def known_geometry(name: str) -> tuple[tuple[int, int, int], int]:
    """(input shape, classes) of a dataset name with a fixed geometry or of a geometry key; ConfigError otherwise."""
    if name in GEOMETRY:
        return GEOMETRY[name]
    m = _KEY.match(str(name))
    if m and all(int(g) > 0 for g in m.groups()[1:]):
        c, h, w, k = (int(g) for g in m.groups()[1:])
        return (c, h, w), k
    raise ConfigError(f"no network geometry for dataset {name!r}; known: {', '.join(GEOMETRY)}, or "
                      f"<name>-<C>x<H>x<W>-c<classes> (e.g. npz-3x32x32-c5 for your own data)")


def load_dataset(cfg, seed: int = 0) -> Splits:
    """The configured dataset's splits (`cfg`: DatasetConfig), checked."""
    return DATASETS.get(cfg.name)(cfg, seed)
