"""Your own arrays in one .npz file: `x` images and `y` integer labels, optionally `x_test` and
`y_test` (otherwise the test split is carved per dataset.test_fraction).

Image layout rule: (N, H, W) is one channel; a 4-D array is channels-last (N, H, W, C) when its
last dimension is 1 or 3 and its second is not, otherwise channels-first (N, C, H, W).
"""
from __future__ import annotations

import zipfile

import numpy as np

from hwnas.datasets.base import DATASETS, Splits
from hwnas.datasets.checks import make_splits, require_path
from hwnas.errors import DataError

WHAT = "an .npz file with arrays x (images) and y (integer labels)"


def to_nchw(x: np.ndarray, who: str) -> np.ndarray:
    """x in (N, C, H, W), by the layout rule in the module docstring."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        if x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
            return x.transpose(0, 3, 1, 2)
        return x
    raise DataError(f"{who} has shape {x.shape}; images must be (N, H, W), (N, H, W, C) or (N, C, H, W)")


@DATASETS.register("npz")
def load_npz(cfg, seed: int = 0) -> Splits:
    """`seed` is unused: the splits follow dataset.split_seed only."""
    path = require_path(cfg, WHAT, "file")
    who = f"dataset=npz: {path}"
    try:
        # allow_pickle=False: an .npz can carry pickled objects, which would run code when loaded
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{who} cannot be read as .npz ({exc}); save it with numpy.savez(path, x=..., y=...)") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{who} has no array {key!r} (it has: {', '.join(arrays) or 'none'}); "
                            f"save it with numpy.savez(path, x=images, y=labels)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{who} has only one of x_test and y_test; give both or neither")
    x = to_nchw(arrays["x"], f"{who}: x")
    x_test = to_nchw(arrays["x_test"], f"{who}: x_test") if "x_test" in arrays else None
    return make_splits("npz", cfg, x, arrays["y"], x_test=x_test, y_test=arrays.get("y_test"))
