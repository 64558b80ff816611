"""Fashion-MNIST from its four IDX files (gzipped or not), read with numpy: 60000 training and
10000 test grey 28x28 images, 10 classes. Validation is carved from the training files; the
t10k files are the test split."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from hwnas.datasets.base import DATASETS, Splits
from hwnas.datasets.checks import existing, make_splits
from hwnas.errors import DataError

# Where Debian's dataset-fashion-mnist package puts the files.
DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
WHERE = ("install Debian's dataset-fashion-mnist package or download the four files from "
         "github.com/zalandoresearch/fashion-mnist (data/fashion)")
IDX_UBYTE = 0x08


def find_file(folder: Path, base: str) -> Path:
    """folder/base, else folder/base.gz."""
    for name in (base, base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"dataset=fashion_mnist: {folder} has no {base} (or {base}.gz); {WHERE}, "
                    f"and set dataset.path to their folder")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions, checked against its header."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"dataset=fashion_mnist: cannot read {path} ({exc}); the file is corrupt or truncated, "
                        f"download it again") from None
    bad = f"dataset=fashion_mnist: {path} is not a valid IDX file"
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{bad} (only {len(raw)} bytes); download it again")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE or raw[3] != ndim:
        raise DataError(f"{bad}: magic number {raw[:4].hex()} where {ndim}-dimensional unsigned bytes "
                        f"(0000080{ndim}) were expected; check the file names")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != size:
        what = "truncated" if len(raw) < size else "longer than its header says"
        raise DataError(f"{bad}: it is {what} ({len(raw)} bytes, header {dims} needs {size}); download it again")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = (find_file(folder, base) for base in FILES[split])
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if len(x) != len(y):
        raise DataError(f"dataset=fashion_mnist: {images.name} holds {len(x)} images but {labels.name} "
                        f"{len(y)} labels; the files do not belong together")
    if x.shape[1:] != (28, 28):
        raise DataError(f"dataset=fashion_mnist: {images} holds {x.shape[1]}x{x.shape[2]} images, not 28x28; "
                        f"for other images use dataset=npz or dataset=image_folder")
    if len(y) and y.max() >= len(CLASSES):
        raise DataError(f"dataset=fashion_mnist: {labels} holds label {y.max()}; Fashion-MNIST has 0..9")
    return x[:, None], y


def read_train_test(cfg, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, x_test, y_test) from dataset.path (else the Debian package's folder); `name` is the
    dataset=<name> an error names (fashion_mnist, fashion_mnist_seq)."""
    folder = existing(Path(str(cfg.path or DEFAULT_PATH)).expanduser(), "the folder of the four IDX files",
                      "dir", f"dataset={name}" + ("" if cfg.path else f" (default path; {WHERE})"))
    return (*read_split(folder, "train"), *read_split(folder, "test"))


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(cfg, seed: int = 0) -> Splits:
    """`seed` is unused: the splits follow dataset.split_seed only."""
    x, y, x_test, y_test = read_train_test(cfg, "fashion_mnist")
    return make_splits("fashion_mnist", cfg, x, y, CLASSES, x_test=x_test, y_test=y_test)
