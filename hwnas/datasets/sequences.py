"""Sequence (1-D) data sets: a series of C channels and length L is stored as an (C, 1, L) image
(height 1), so splits, standardisation, training and ONNX export work unchanged; space=dash builds
its 1-D backbone for them.

- `osuleaf`, `plaid`: UCR time-series classification sets whose files ship inside the sktime
  package (read with sktime's loaders; nothing is downloaded). Their own TRAIN/TEST files are the
  train and test splits; validation is carved from TRAIN (dataset.val_fraction, dataset.split_seed).
- PLAID's series have unequal lengths (100 to 1344 samples of current at 30 kHz): each is padded
  at its end with zeros (in amperes, before standardisation: the appliance drawing no current) to
  PLAID_LENGTH, the longest series of either file, so the time scale stays the recorded one.
- `fashion_mnist_seq`: Fashion-MNIST (hwnas/datasets/fashion_mnist.py, same files) read row by row
  as 784-long one-channel sequences, as DASH reads its sequential MNIST.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.datasets.base import DATASETS, GEOMETRY, Splits
from hwnas.datasets.checks import make_splits
from hwnas.errors import ConfigError, DataError

PLAID_LENGTH = 1344
PLAID_CLASSES = ("air conditioner", "compact fluorescent lamp", "fan", "fridge", "hairdryer", "heater",
                 "incandescent light bulb", "laptop", "microwave", "vacuum", "washing machine")
INSTALL = "pip install 'hwnas[sequences]' (or pip install 'sktime>=1.2')"


def sktime_datasets():
    """sktime.datasets, or one ConfigError saying how to install it (imported lazily: it is slow,
    and only these loaders need it)."""
    try:
        import sktime.datasets as sk
    except ImportError:
        raise ConfigError(f"the UCR sets (dataset=osuleaf, plaid) ship inside the sktime package, which is not "
                          f"installed; {INSTALL}") from None
    return sk


def read_ucr(name: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The series (each (C, L) float64) and the string labels of a shipped UCR set's TRAIN or TEST file."""
    sk = sktime_datasets()
    loader = getattr(sk, f"load_{name}")
    try:
        x, y = loader(split=split.lower())
    except (OSError, ValueError) as exc:  # a damaged sktime install: its .ts file unreadable
        raise DataError(f"dataset={name}: cannot read its {split.upper()} file from sktime ({exc}); reinstall "
                        f"sktime") from None
    series = [np.stack([np.asarray(x.iloc[i, j], dtype=np.float64) for j in range(x.shape[1])])
              for i in range(len(x))]
    return series, np.asarray(y)


def int_labels(y: np.ndarray, who: str) -> np.ndarray:
    """UCR labels are class numbers written as text ('1', '10'): their integer values, so classes
    order by number (10 after 9), not by spelling."""
    try:
        return np.array([int(str(v).strip()) for v in y], dtype=np.int64)
    except ValueError:
        bad = next(str(v) for v in y if not str(v).strip().lstrip("-").isdigit())
        raise DataError(f"{who}: label {bad!r} is not a class number; the file is not a UCR classification set") from None


def to_array(series: Sequence[np.ndarray], length: int, who: str, pad: bool) -> np.ndarray:
    """(N, C, 1, length) float64 from (C, L_i) series: each L_i must be `length`, or with `pad`
    at most `length` (zeros appended)."""
    if not len(series):
        raise DataError(f"{who}: no series")
    channels = {s.shape[0] for s in series}
    if len(channels) != 1 or any(s.ndim != 2 for s in series):
        raise DataError(f"{who}: series with different channel counts ({sorted(channels)}); all must have one")
    out = np.zeros((len(series), channels.pop(), 1, length))
    for i, s in enumerate(series):
        n = s.shape[1]
        if n == 0 or n > length or (n < length and not pad):
            raise DataError(f"{who}: series {i} has length {n}, expected {length if not pad else f'1..{length}'}")
        out[i, :, 0, :n] = s
    return out


def ucr_splits(name: str, cfg, train, test, class_names=None, pad: bool = False) -> Splits:
    """Checked splits of a UCR set from its (series, labels) TRAIN and TEST files."""
    who = f"dataset={name}"
    (c, _, length), k = GEOMETRY[name]
    x, x_test = to_array(train[0], length, who, pad), to_array(test[0], length, f"{who} (test split)", pad)
    if x.shape[1] != c:
        raise DataError(f"{who}: {x.shape[1]} channel(s), expected {c}")
    s = make_splits(name, cfg, x, int_labels(train[1], who), class_names, x_test=x_test,
                    y_test=int_labels(test[1], f"{who} (test split)"))
    if s.num_classes != k:
        raise DataError(f"{who}: {s.num_classes} classes in the training file, expected {k}; the file is not {name}'s")
    return s


@DATASETS.register("osuleaf")
def load_osuleaf(cfg, seed: int = 0) -> Splits:
    """OSULeaf: leaf outlines as 427-long series, 6 classes, 200 train and 242 test series.
    `seed` is unused: the splits follow dataset.split_seed only."""
    return ucr_splits("osuleaf", cfg, read_ucr("osuleaf", "train"), read_ucr("osuleaf", "test"))


@DATASETS.register("plaid")
def load_plaid(cfg, seed: int = 0) -> Splits:
    """PLAID: appliance current at 30 kHz, 11 appliance types, 537 train and 537 test series of
    100..1344 samples, zero-padded at the end to 1344 (module docstring)."""
    return ucr_splits("plaid", cfg, read_ucr("plaid", "train"), read_ucr("plaid", "test"), PLAID_CLASSES, pad=True)


@DATASETS.register("fashion_mnist_seq")
def load_fashion_mnist_seq(cfg, seed: int = 0) -> Splits:
    """Fashion-MNIST's images as 784-long sequences (rows in order); dataset.path as fashion_mnist's."""
    from hwnas.datasets.fashion_mnist import CLASSES, read_train_test

    x, y, x_test, y_test = read_train_test(cfg, "fashion_mnist_seq")
    flat = lambda a: a.reshape(len(a), 1, 1, -1)  # noqa: E731  (N, 1, 28, 28) -> (N, 1, 1, 784), row-major
    return make_splits("fashion_mnist_seq", cfg, flat(x), y, CLASSES, x_test=flat(x_test), y_test=y_test)
