"""CIFAR-10 and CIFAR-100 from the binary distribution on disk (Krizhevsky 2009); never downloaded.

The binary version is read, not the Python one, because the Python version is pickled and
unpickling a file can execute code. CIFAR-10 (``cifar-10-batches-bin``): ``data_batch_1.bin``
to ``data_batch_5.bin`` and ``test_batch.bin``, records of 1 label byte + 3,072 pixel bytes
(1,024 red, 1,024 green, 1,024 blue, row-major 32x32). CIFAR-100 (``cifar-100-binary``):
``train.bin`` and ``test.bin``, records of a coarse and a fine label byte + 3,072 pixels;
the fine (100-class) label is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lsdb.data.base import Dataset, check_normalize
from lsdb.errors import BadInput

PIXELS = 3 * 32 * 32
#: Per-channel mean and std of each training set (after scaling to [0, 1]).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
LAYOUT = {  # name: (folder, train files, test files, label bytes, classes)
    "cifar10": ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], 1, 10),
    "cifar100": ("cifar-100-binary", ["train.bin"], ["test.bin"], 2, 100),
}


def cifar10(root: str, normalize: str | None = "standard", limit: int | None = None) -> Dataset:
    """CIFAR-10, 50,000 train / 10,000 test 3x32x32 images, 10 classes, binary files under `root`.

    ``normalize``: ``standard`` (x/255 minus the per-channel train mean, over its std),
    ``scale`` (x/255) or ``none`` (raw 0..255). ``limit`` keeps the first N of each split.
    """
    return _load("cifar10", root, normalize, limit)


def cifar100(root: str, normalize: str | None = "standard", limit: int | None = None) -> Dataset:
    """CIFAR-100 (fine labels), 50,000 train / 10,000 test 3x32x32 images, binary files under `root`.

    ``normalize`` and ``limit`` as for ``cifar10``.
    """
    return _load("cifar100", root, normalize, limit)


def read_records(path: Path, label_bytes: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 3, 32, 32), labels)`` from one binary file; the last label byte is the label."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise BadInput(
            f"dataset '{name}': {path} has {raw.size} bytes, not a whole number of "
            f"{record}-byte records ({label_bytes} label byte(s) + {PIXELS} pixels)"
        )
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_bytes - 1]


def _load(name: str, root: str, normalize: str | None, limit: int | None) -> Dataset:
    normalize = check_normalize(normalize, name)
    if limit is not None and limit < 1:
        raise BadInput(f"dataset '{name}': limit must be a positive int, got {limit}")
    folder_name, train_files, test_files, label_bytes, classes = LAYOUT[name]
    base = Path(root).expanduser()
    folder = base if (base / train_files[0]).is_file() else base / folder_name
    splits = []
    for files in (train_files, test_files):
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise BadInput(
                f"dataset '{name}': missing {', '.join(missing)} in {folder} (looked in {base} and "
                f"{base / folder_name}); lsdb reads the binary version and never downloads"
            )
        images, labels = [], []
        for f in files:
            pixels, label = read_records(folder / f, label_bytes, name)
            images.append(pixels)
            labels.append(label)
            if limit is not None and sum(len(a) for a in labels) >= limit:
                break
        x = torch.from_numpy(np.concatenate(images)[:limit].astype(np.float32))
        if normalize != "none":
            x.div_(255.0)  # in place: the full training set is 600 MB as float32
        if normalize == "standard":
            mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in STATS[name])
            x.sub_(mean).div_(std)
        splits.append((x, torch.from_numpy(np.concatenate(labels)[:limit].astype(np.int64))))
    return Dataset.from_arrays(name, splits[0], splits[1], num_classes=classes)
