"""MNIST from IDX files written in tmp_path: parsing, layouts, normalization, limits and errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lsdb.data import load_dataset
from lsdb.errors import BadInput


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An unsigned-byte IDX file: magic 0x0000 08 ndim, big-endian uint32 dims, then the bytes."""
    payload = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def make_mnist(folder: Path, n_train: int = 12, n_test: int = 5, compress: bool = False) -> dict[str, np.ndarray]:
    """Tiny MNIST-format files (28x28 images, labels 0-9) in `folder`; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte": rs.randint(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rs.randint(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10,
    }
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


def test_reads_idx_files_exactly(tmp_path: Path) -> None:
    arrays = make_mnist(tmp_path)
    data = load_dataset(f"mnist:root={tmp_path},normalize=none")
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert data.train[0].shape == (12, 1, 28, 28) and data.test[0].shape == (5, 1, 28, 28)
    assert torch.equal(data.train[0][:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]).float())
    assert data.test[1].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_gzipped_files_under_torchvision_layout(tmp_path: Path) -> None:
    arrays = make_mnist(tmp_path / "MNIST" / "raw", compress=True)
    data = load_dataset(f"mnist:root={tmp_path},normalize=none")
    assert torch.equal(data.test[0][:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float())


def test_normalizations_and_limit(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    raw = load_dataset(f"mnist:root={tmp_path},normalize=none")
    scaled = load_dataset(f"mnist:root={tmp_path},normalize=scale")
    standard = load_dataset(f"mnist:root={tmp_path}")
    assert torch.allclose(scaled.train[0], raw.train[0] / 255)
    assert torch.allclose(standard.train[0], (raw.train[0] / 255 - 0.1307) / 0.3081)
    assert len({raw.digest("train"), scaled.digest("train"), standard.digest("train")}) == 3
    limited = load_dataset(f"mnist:root={tmp_path},limit=4")
    assert torch.equal(limited.train[0], standard.train[0][:4]) and len(limited.test[0]) == 4


def test_missing_root_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=f"no MNIST IDX files .* in {tmp_path / 'nowhere'}.*never downloads"):
        load_dataset(f"mnist:root={tmp_path / 'nowhere'}")


def test_missing_file_is_named(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(BadInput, match=f"{tmp_path}: missing t10k-labels-idx1-ubyte"):
        load_dataset(f"mnist:root={tmp_path}")


def test_truncated_or_foreign_files_are_bad_input(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(BadInput, match=f"{images} has .* bytes, but its header"):
        load_dataset(f"mnist:root={tmp_path}")
    images.write_bytes(b"\x89PNG....")
    with pytest.raises(BadInput, match="not an unsigned-byte IDX file"):
        load_dataset(f"mnist:root={tmp_path}")


def test_mismatched_images_and_labels_are_bad_input(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3))
    with pytest.raises(BadInput, match="do not match"):
        load_dataset(f"mnist:root={tmp_path}")
