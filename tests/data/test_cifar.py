"""CIFAR-10/100 from binary files written in tmp_path: record layout, labels, layouts and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lsdb.data import load_dataset
from lsdb.errors import BadInput


def write_records(path: Path, images: np.ndarray, *labels: np.ndarray) -> None:
    """Binary CIFAR records: the label byte(s), then 3,072 pixel bytes (R, G, B planes)."""
    columns = [label.reshape(-1, 1) for label in labels] + [images.reshape(len(images), -1)]
    path.write_bytes(np.concatenate(columns, axis=1).astype(np.uint8).tobytes())


def make_cifar10(root: Path, per_batch: int = 2, n_test: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Five tiny training batches and a test batch in ``root/cifar-10-batches-bin``; returns train x, y."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rs = np.random.RandomState(0)
    xs, ys = [], []
    for i in range(1, 6):
        x, y = rs.randint(0, 256, (per_batch, 3, 32, 32)), rs.randint(0, 10, per_batch)
        write_records(folder / f"data_batch_{i}.bin", x, y)
        xs.append(x)
        ys.append(y)
    write_records(folder / "test_batch.bin", rs.randint(0, 256, (n_test, 3, 32, 32)), rs.randint(0, 10, n_test))
    return np.concatenate(xs), np.concatenate(ys)


def test_cifar10_records_are_read_in_order(tmp_path: Path) -> None:
    x, y = make_cifar10(tmp_path)
    data = load_dataset(f"cifar10:root={tmp_path},normalize=none")
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert torch.equal(data.train[0], torch.from_numpy(x).float()) and data.train[1].tolist() == y.tolist()
    assert data.test[0].shape == (3, 3, 32, 32)


def test_root_may_be_the_folder_itself(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    inner = load_dataset(f"cifar10:root={tmp_path / 'cifar-10-batches-bin'}")
    outer = load_dataset(f"cifar10:root={tmp_path}")
    assert inner.digest("train") == outer.digest("train")


def test_cifar10_standard_normalization_is_per_channel(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    raw = load_dataset(f"cifar10:root={tmp_path},normalize=none").train[0]
    standard = load_dataset(f"cifar10:root={tmp_path}").train[0]
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    assert torch.allclose(standard, (raw / 255 - mean) / std, atol=1e-5)


def test_limit_takes_the_first_examples_across_batches(tmp_path: Path) -> None:
    x, _ = make_cifar10(tmp_path)
    data = load_dataset(f"cifar10:root={tmp_path},normalize=none,limit=3")
    assert torch.equal(data.train[0], torch.from_numpy(x[:3]).float()) and len(data.test[0]) == 3


def test_cifar100_uses_the_fine_label(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rs = np.random.RandomState(1)
    x = rs.randint(0, 256, (4, 3, 32, 32))
    coarse, fine = np.array([1, 2, 3, 4]), np.array([50, 99, 0, 7])
    write_records(folder / "train.bin", x, coarse, fine)
    write_records(folder / "test.bin", x[:2], coarse[:2], fine[:2])
    data = load_dataset(f"cifar100:root={tmp_path},normalize=scale")
    assert data.num_classes == 100 and data.train[1].tolist() == [50, 99, 0, 7]
    assert torch.allclose(data.train[0], torch.from_numpy(x).float() / 255)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="missing data_batch_1.bin, data_batch_2.bin"):
        load_dataset(f"cifar10:root={tmp_path}")
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    with pytest.raises(BadInput, match="missing test_batch.bin in .*cifar-10-batches-bin.*never downloads"):
        load_dataset(f"cifar10:root={tmp_path}")


def test_wrong_record_size_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-1])
    with pytest.raises(BadInput, match=f"{batch} has .* bytes, not a whole number of 3073-byte records"):
        load_dataset(f"cifar10:root={tmp_path}")
