"""MNIST from the original IDX files already on disk (LeCun et al. 1998); never downloaded.

The IDX format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
each dimension as a big-endian uint32, then the data in C order. It is parsed here directly,
so no torchvision is needed. Files may be gzipped, and ``root`` may be the folder holding
them or a parent laid out as torchvision leaves it (``MNIST/raw``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from lsdb.data.base import Dataset, check_normalize
from lsdb.errors import BadInput

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SUBFOLDERS = ("", "MNIST/raw", "MNIST", "mnist", "raw")
#: The customary MNIST training-set pixel mean and std (after scaling to [0, 1]).
MEAN, STD = 0.1307, 0.3081


def mnist(root: str, normalize: str | None = "standard", limit: int | None = None) -> Dataset:
    """MNIST, 60,000 train / 10,000 test 1x28x28 images, 10 classes, from IDX files under `root`.

    ``normalize``: ``standard`` ((x/255 - 0.1307) / 0.3081), ``scale`` (x/255) or ``none``
    (raw 0..255). ``limit`` keeps the first N examples of each split.
    """
    normalize = check_normalize(normalize, "mnist")
    if limit is not None and limit < 1:
        raise BadInput(f"dataset 'mnist': limit must be a positive int, got {limit}")
    folder = _find_folder(Path(root).expanduser())
    splits = []
    for images_name, labels_name in FILES.values():
        images = read_idx(_find_file(folder, images_name))[:limit]
        labels = read_idx(_find_file(folder, labels_name))[:limit]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise BadInput(
                f"dataset 'mnist': {folder}: {images_name} and {labels_name} do not match "
                f"(shapes {images.shape} and {labels.shape})"
            )
        x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
        if normalize != "none":
            x.div_(255.0)
        if normalize == "standard":
            x.sub_(MEAN).div_(STD)
        splits.append((x, torch.from_numpy(labels.astype(np.int64))))
    return Dataset.from_arrays("mnist", splits[0], splits[1], num_classes=10)


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (optionally gzipped) as a uint8 array; `BadInput` if malformed."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:  # BadGzipFile is an OSError
        raise BadInput(f"dataset 'mnist': cannot read {path} ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise BadInput(f"dataset 'mnist': {path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BadInput(f"dataset 'mnist': {path} is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise BadInput(f"dataset 'mnist': {path} has {len(raw)} bytes, but its header {shape} implies {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_folder(root: Path) -> Path:
    wanted = FILES["train"][0]
    for sub in SUBFOLDERS:
        folder = root / sub if sub else root
        if any(path.is_file() for path in _variants(folder, wanted)):
            return folder
    looked = ", ".join(str(root / s) if s else str(root) for s in SUBFOLDERS)
    raise BadInput(f"dataset 'mnist': no MNIST IDX files ({wanted}[.gz] ...) in {looked}; lsdb never downloads")


def _find_file(folder: Path, name: str) -> Path:
    for path in _variants(folder, name):
        if path.is_file():
            return path
    raise BadInput(f"dataset 'mnist': {folder}: missing {name} (or {name}.gz)")


def _variants(folder: Path, name: str) -> list[Path]:
    """The spellings MNIST files are distributed under: plain, gzipped, and ``train-images.idx3-ubyte``."""
    dotted = name.replace("-idx", ".idx")
    return [folder / name, folder / (name + ".gz"), folder / dotted, folder / (dotted + ".gz")]
