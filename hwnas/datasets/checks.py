"""What every loader does after reading its files: check the arrays, remap the labels, carve
stratified splits and standardise. Loaders only read; the checks live here once.

Splits depend on `dataset.split_seed` only (never on the search seed), so every search on a
data set trains and validates on the same examples and runs compare.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hwnas.datasets.base import Splits
from hwnas.errors import ConfigError, DataError


def require_path(cfg, what: str, kind: str) -> Path:
    """`dataset.path` as a Path that exists and is a `kind` ("file" or "dir"); `what` says
    what it should hold, for the message."""
    if cfg.path in (None, ""):
        raise ConfigError(f"dataset={cfg.name} needs dataset.path ({what}), e.g. dataset.path=/data/mine")
    return existing(Path(str(cfg.path)).expanduser(), what, kind, f"dataset={cfg.name}")


def existing(path: Path, what: str, kind: str, who: str) -> Path:
    if not path.exists():
        raise DataError(f"{who}: {path} does not exist; set dataset.path to {what}")
    if kind == "dir" and not path.is_dir():
        raise DataError(f"{who}: {path} is not a folder; set dataset.path to {what}")
    if kind == "file" and not path.is_file():
        raise DataError(f"{who}: {path} is not a file; set dataset.path to {what}")
    return path


def check_split_options(cfg, carve_test: bool) -> None:
    """val_fraction (and test_fraction when the set ships no test split) in (0, 1); split_seed >= 0."""
    names = ("val_fraction", "test_fraction") if carve_test else ("val_fraction",)
    for name in names:
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1):
            raise ConfigError(f"dataset.{name} must be in (0, 1), got {v}")
    if not (isinstance(cfg.split_seed, int) and cfg.split_seed >= 0):
        raise ConfigError(f"dataset.split_seed must be an integer >= 0, got {cfg.split_seed}")


def check_images(x: np.ndarray, who: str) -> None:
    """x: (N, C, H, W) numeric and finite."""
    if x.ndim != 4:
        raise DataError(f"{who}: images must be (N, C, H, W), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
        raise DataError(f"{who}: images must be real numbers, got dtype {x.dtype}")
    if x.shape[0] == 0 or 0 in x.shape[1:]:
        raise DataError(f"{who}: no images (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
        raise DataError(f"{who}: {bad} image(s) hold NaN or inf values; remove or repair them")


def as_int_labels(y: np.ndarray, n: int, who: str) -> np.ndarray:
    """y as int64 of length n; whole-valued floats pass, anything else is a DataError."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{who}: labels must be one-dimensional (N,), got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{who}: {n} images but {len(y)} labels; they must pair one to one")
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DataError(f"{who}: labels hold NaN or inf; labels must be integer class numbers")
        whole = y == np.round(y)
        if whole.all():
            return y.astype(np.int64)
        raise DataError(f"{who}: labels must be integer class numbers, found {y[~whole][0].item()!r}")
    raise DataError(f"{who}: labels must be integer class numbers, got dtype {y.dtype}")


def stratified_holdout(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) index arrays, sorted: about `fraction` of each class held out, but
    never a class's last example, so every class stays in the kept part."""
    kept, out = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = min(round(fraction * len(idx)), len(idx) - 1)
        out.append(idx[:k])
        kept.append(idx[k:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(out))


def standardise(x_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """float32 copies standardised with the training images' per-channel mean and std, so no
    statistic of validation or test data leaks into training."""
    c = x_train.shape[1]
    mean = np.array([x_train[:, i].mean(dtype=np.float64) for i in range(c)])
    std = np.array([x_train[:, i].std(dtype=np.float64) for i in range(c)])
    std[std == 0] = 1.0  # a constant channel carries no information; leave it at zero
    out = []
    for a in (x_train, *others):
        a = a.astype(np.float32)  # always a copy: the caller's arrays stay as read
        a -= mean.astype(np.float32)[None, :, None, None]
        a /= std.astype(np.float32)[None, :, None, None]
        out.append(a)
    return out


def make_splits(name: str, cfg, x: np.ndarray, y, class_names: Mapping[int, str] | Sequence[str] | None = None,
                x_test: np.ndarray | None = None, y_test=None) -> Splits:
    """Checked, standardised splits from raw (N, C, H, W) images and integer labels.

    Without x_test, `test_fraction` of all examples is held out as the test split (stratified);
    then `val_fraction` of the rest as the validation split. class_names maps an original
    label to its name (default: the label itself). Labels become 0..K-1 in sorted order.
    """
    who = f"dataset={name}"
    carve_test = x_test is None
    check_split_options(cfg, carve_test)
    check_images(x, who)
    y = as_int_labels(y, len(x), who)
    if not carve_test:
        if y_test is None:
            raise DataError(f"{who}: test images without test labels")
        check_images(x_test, f"{who} (test split)")
        y_test = as_int_labels(y_test, len(x_test), f"{who} (test split)")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{who}: test images are {x_test.shape[1:]} (C, H, W) but training images "
                            f"{x.shape[1:]}; both must have one shape")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{who}: only one class ({_name(class_names, classes[0])}) in the data; "
                        f"a classifier needs at least two")
    if not carve_test:
        unseen = np.setdiff1d(np.unique(y_test), classes)
        if len(unseen):
            raise DataError(f"{who}: class(es) {', '.join(_name(class_names, c) for c in unseen)} appear in the "
                            f"test split but not in the training data; add training examples of them")

    rng = np.random.default_rng(cfg.split_seed)
    idx_all = np.arange(len(y))
    if carve_test:
        rest, test = stratified_holdout(y, cfg.test_fraction, rng)
        _nonempty(who, "test", test, "test_fraction", cfg.test_fraction, len(y))
        x_test, y_test, idx_all = x[test], y[test], rest
    keep, val = stratified_holdout(y[idx_all], cfg.val_fraction, rng)
    _nonempty(who, "validation", val, "val_fraction", cfg.val_fraction, len(idx_all))
    train, val = idx_all[keep], idx_all[val]

    def encode(labels):  # every label is in `classes` (checked above), which np.unique sorted
        return np.searchsorted(classes, labels).astype(np.int64)

    xs = standardise(x[train], x[val], x_test)
    return Splits(name=name, x_train=xs[0], y_train=encode(y[train]), x_val=xs[1], y_val=encode(y[val]),
                  x_test=xs[2], y_test=encode(y_test), num_classes=len(classes),
                  class_names=tuple(_name(class_names, c) for c in classes))


def _name(class_names, c) -> str:
    c = int(c)
    if class_names is None:
        return str(c)
    if isinstance(class_names, Mapping):
        return str(class_names.get(c, c))
    return str(class_names[c]) if 0 <= c < len(class_names) else str(c)


def _nonempty(who: str, split: str, idx: np.ndarray, option: str, value: float, n: int) -> None:
    if len(idx) == 0:
        raise DataError(f"{who}: dataset.{option}={value} of {n} examples leaves the {split} split empty "
                        f"(each class keeps at least one training example); raise dataset.{option} or add data")
