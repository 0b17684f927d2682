"""scikit-learn's bundled handwritten digits: real data that needs no download.

1,797 8x8 grey-level images of the digits 0-9 (Alpaydin & Kaynak 1998, UCI "Optical
Recognition of Handwritten Digits"), pixel values 0..16. Small enough that a whole loss
surface of an MLP or a small CNN is computed in seconds on a CPU, which makes it the default
dataset of lsdb's tests and demos.
"""

from __future__ import annotations

import torch

from lsdb.data.base import Dataset, check_normalize, split_indices, standardize


def digits(
    image: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
    normalize: str | None = "standard",
) -> Dataset:
    """scikit-learn digits, 10 classes: flat 64-vectors, or 1x8x8 images with ``image=true``.

    A seeded random split (1,437 train / 360 test by default). ``normalize``: ``standard``
    (per-pixel mean and std of the train split), ``scale`` (x / 16, into [0, 1]) or ``none``.
    """
    from sklearn.datasets import load_digits  # deferred: scikit-learn is slow to import

    normalize = check_normalize(normalize, "digits")
    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    train_idx, test_idx = split_indices(len(x), test_fraction, seed, "digits")
    x_train, x_test = x[train_idx], x[test_idx]
    if normalize == "standard":
        x_train, x_test = standardize(x_train, x_test)
    elif normalize == "scale":
        x_train, x_test = x_train / 16.0, x_test / 16.0
    if image:
        x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    return Dataset.from_arrays("digits", (x_train, y[train_idx]), (x_test, y[test_idx]), num_classes=10)
