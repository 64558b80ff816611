"""Your own images: dataset.path is a folder with one sub-folder per class (its name is the
class name) of image files. The test split is carved per dataset.test_fraction.

All images must end up one size: those of another size are resized (bilinear) to the most
common size, with a warning naming how many. Images are grey (1 channel) unless any image has
colour, then all are RGB (3 channels; an RGB file whose channels are all equal counts as grey).
Transparency is dropped.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from hwnas.datasets.base import DATASETS, Splits
from hwnas.datasets.checks import make_splits, require_path
from hwnas.errors import DataError

WHAT = "a folder with one sub-folder of images per class"
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}


def list_images(root: Path) -> dict[str, list[Path]]:
    """class name -> its image files, both sorted (hidden files and folders skipped)."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p for p in root.iterdir() if p.suffix.lower() in EXTENSIONS]
        hint = f" ({len(loose)} images lie directly in it)" if loose else ""
        raise DataError(f"dataset=image_folder: {root} has no class sub-folders{hint}; put each class's images "
                        f"in a sub-folder named after the class")
    found = {}
    for c in classes:
        files = sorted(p for p in c.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(c).parts))
        if not files:
            raise DataError(f"dataset=image_folder: class folder {c} holds no images "
                            f"({', '.join(sorted(EXTENSIONS))}); add some or remove the folder")
        found[c.name] = files
    return found


def read_image(path: Path):
    """The image as a numpy array: (H, W) grey or (H, W, 3) colour."""
    from PIL import Image, UnidentifiedImageError  # lazy: only this loader needs Pillow

    try:
        with Image.open(path) as img:
            img.load()
            grey = img.mode in GREY_MODES
            return np.asarray(img.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # SyntaxError: some broken headers
        raise DataError(f"dataset=image_folder: cannot read image {path} ({exc}); remove or replace it") from None


def resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))


@DATASETS.register("image_folder")
def load_image_folder(cfg, seed: int = 0) -> Splits:
    """`seed` is unused: the splits follow dataset.split_seed only."""
    root = require_path(cfg, WHAT, "dir")
    found = list_images(root)
    names = list(found)
    images, labels, paths = [], [], []
    for label, name in enumerate(names):
        for p in found[name]:
            images.append(read_image(p))
            labels.append(label)
            paths.append(p)
    # Colour if any image has it; a colour file holding grey pixels does not count.
    colour = any(a.ndim == 3 and not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))
                 for a in images)
    images = [(a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)) if colour
              else (a if a.ndim == 2 else a[..., 0]) for a in images]
    sizes = Counter(a.shape[:2] for a in images)
    # Most common size; ties go to the larger image, so nothing is decided by file order.
    hw = max(sizes, key=lambda s: (sizes[s], s[0] * s[1], s))
    if len(sizes) > 1:
        odd = len(images) - sizes[hw]
        example = next(p for p, a in zip(paths, images) if a.shape[:2] != hw)
        warnings.warn(f"dataset=image_folder: {odd} of {len(images)} images are not {hw[0]}x{hw[1]} "
                      f"(e.g. {example}); resized them to it", stacklevel=2)
        images = [a if a.shape[:2] == hw else resize(a, hw) for a in images]
    x = np.stack(images)
    x = x.transpose(0, 3, 1, 2) if colour else x[:, None]
    return make_splits("image_folder", cfg, x, np.array(labels), names)
