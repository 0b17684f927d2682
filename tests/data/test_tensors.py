"""A user's arrays from .pt, .npz and .h5 files, read without executing anything in them."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from lsdb.data import load_dataset
from lsdb.errors import BadInput


def make_arrays(n: int = 50, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(0)
    return rs.standard_normal((n, 4)).astype(np.float32), (np.arange(n) % classes).astype(np.int64)


@pytest.mark.parametrize("keys", [("x", "y"), ("X", "y"), ("data", "targets")])
def test_pt_dict_with_accepted_keys(tmp_path: Path, keys: tuple[str, str]) -> None:
    x, y = make_arrays()
    torch.save({keys[0]: torch.from_numpy(x), keys[1]: torch.from_numpy(y)}, tmp_path / "d.pt")
    data = load_dataset(f"tensors:path={tmp_path / 'd.pt'}")
    assert data.input_shape == (4,) and data.num_classes == 3 and data.task == "classification"
    assert (len(data.train[0]), len(data.test[0])) == (40, 10)
    assert data.train[0].dtype == torch.float32 and data.train[1].dtype == torch.int64


def test_pt_tuple_and_npz_and_h5_give_the_same_dataset(tmp_path: Path) -> None:
    x, y = make_arrays()
    torch.save((torch.from_numpy(x), torch.from_numpy(y)), tmp_path / "d.pt")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["x"], h5["y"] = x, y
    digests = {load_dataset(f"tensors:path={tmp_path / name}").digest("train") for name in ("d.pt", "d.npz", "d.h5")}
    assert len(digests) == 1


def test_test_path_gives_the_test_split(tmp_path: Path) -> None:
    x, y = make_arrays()
    np.savez(tmp_path / "train.npz", x=x[:30], y=y[:30])
    np.savez(tmp_path / "test.npz", x=x[30:], y=y[30:])
    data = load_dataset(f"tensors:path={tmp_path / 'train.npz'},test_path={tmp_path / 'test.npz'}")
    assert torch.equal(data.train[0], torch.from_numpy(x[:30])) and torch.equal(data.test[1], torch.from_numpy(y[30:]))


def test_float_targets_are_regression_unless_told_otherwise(tmp_path: Path) -> None:
    x, y = make_arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y.astype(np.float64))
    regression = load_dataset(f"tensors:path={tmp_path / 'd.npz'}")
    classification = load_dataset(f"tensors:path={tmp_path / 'd.npz'},task=classification")
    assert regression.task == "regression" and regression.train[1].shape == (40, 1)
    assert classification.task == "classification" and classification.train[1].dtype == torch.int64


def test_standard_normalization_uses_train_statistics(tmp_path: Path) -> None:
    x, y = make_arrays()
    np.savez(tmp_path / "d.npz", x=x * 5 + 3, y=y)
    data = load_dataset(f"tensors:path={tmp_path / 'd.npz'},normalize=standard")
    assert torch.allclose(data.train[0].mean(0), torch.zeros(4), atol=1e-5)
    assert data.digest("train") != load_dataset(f"tensors:path={tmp_path / 'd.npz'}").digest("train")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=f"file not found: {tmp_path / 'nope.pt'}"):
        load_dataset(f"tensors:path={tmp_path / 'nope.pt'}")


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("d.pt", lambda p: torch.save({"inputs": torch.zeros(3, 2)}, p), "keys \\['inputs'\\] found; expected a dict"),
        ("d.pt", lambda p: torch.save(torch.zeros(3, 2), p), "holds a Tensor; expected"),
        ("d.pt", lambda p: p.write_bytes(b"not a torch file"), "not a plain tensor file"),
        ("d.npz", lambda p: np.savez(p, a=np.zeros(3)), "arrays \\['a'\\] found; expected arrays x and y"),
        ("d.npz", lambda p: np.savez(p, x=np.zeros((2, 2)), y=np.array([{}, {}], dtype=object)), "not a readable .npz"),
        ("d.npz", lambda p: p.write_bytes(b"garbage"), "not a readable .npz"),
        ("d.h5", lambda p: h5py.File(p, "w").close(), "expected datasets x and y"),
        ("d.h5", lambda p: p.write_bytes(b"garbage"), "not a readable HDF5 file"),
        ("d.csv", lambda p: p.write_text("1,2\n"), "unsupported file type '.csv'"),
        ("d.npz", lambda p: np.savez(p, x=np.zeros((3, 2)), y=np.zeros(4)), "x has 3 examples but y has 4"),
        ("d.npz", lambda p: np.savez(p, x=np.zeros(3), y=np.zeros(3)), "x must have shape \\(N, features...\\)"),
    ],
)
def test_wrong_format_is_bad_input_naming_the_file(tmp_path: Path, name: str, write, message: str) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(BadInput, match=message) as info:
        load_dataset(f"tensors:path={path}")
    assert str(path) in str(info.value)


class _CreatesMarker:
    """A pickle payload that creates a file when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pt_files_are_loaded_with_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"x": _CreatesMarker(marker), "y": torch.zeros(3)}, tmp_path / "evil.pt")
    assert not marker.exists()
    with pytest.raises(BadInput, match="evil.pt: not a plain tensor file"):
        load_dataset(f"tensors:path={tmp_path / 'evil.pt'}")
    assert not marker.exists()
    torch.load(tmp_path / "evil.pt", weights_only=False)  # the payload is live: unsafe loading runs it
    assert marker.exists()
