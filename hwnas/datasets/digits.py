"""scikit-learn's handwritten digits: 1797 grey 8x8 images, 10 classes; ships inside
scikit-learn, so nothing to download. The test split is carved per dataset.test_fraction."""
from __future__ import annotations

from hwnas.datasets.base import DATASETS, Splits
from hwnas.datasets.checks import make_splits


@DATASETS.register("digits")
def load_digits(cfg, seed: int = 0) -> Splits:
    """`seed` is unused: the splits follow dataset.split_seed only."""
    # lazy: scikit-learn is slow to import, and only this loader needs it
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = d.images[:, None, :, :]  # (N, 8, 8) pixel counts 0..16 -> (N, 1, 8, 8)
    return make_splits("digits", cfg, x, d.target, [str(n) for n in d.target_names])
