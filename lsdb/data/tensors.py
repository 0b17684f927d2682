"""A user's own arrays on disk: ``.pt``, ``.npz`` and HDF5 files holding x and y.

Files are read without executing anything they contain: ``torch.load(weights_only=True)``
for PyTorch files and ``allow_pickle=False`` for NumPy archives, so a dataset spec pointing at
an untrusted file can at worst fail with `BadInput`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsdb.data.base import Dataset, check_normalize, split_indices, standardize
from lsdb.errors import BadInput

#: Key pairs accepted in a ``.pt`` dict, in order of preference.
PT_KEYS = (("x", "y"), ("X", "y"), ("data", "targets"))
SUFFIXES = (".pt", ".pth", ".npz", ".h5", ".hdf5")


def tensors(
    path: str,
    test_path: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    task: str = "auto",
    normalize: str | None = None,
) -> Dataset:
    """Arrays from `path` (``.pt``, ``.npz``, ``.h5``); the test split from `test_path` or a seeded split.

    ``task=auto`` treats integer y as class labels and float y as regression targets.
    ``normalize``: ``none``, ``standard`` (per-feature, train statistics) or ``scale``
    (divide by the train split's largest absolute value).
    """
    normalize = check_normalize(normalize, "tensors")
    x, y = read_arrays(path)
    if test_path is not None:
        train, test = (x, y), read_arrays(test_path)
    else:
        train_idx, test_idx = split_indices(len(x), test_fraction, seed, "tensors")
        train, test = (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])
    ds = Dataset.from_arrays("tensors", train, test, task=task)
    if normalize == "none":
        return ds
    (x_tr, y_tr), (x_te, y_te) = ds.train, ds.test
    if normalize == "standard":
        x_tr, x_te = standardize(x_tr, x_te)
    else:
        peak = float(x_tr.abs().max()) or 1.0
        x_tr, x_te = x_tr / peak, x_te / peak
    return Dataset.from_arrays("tensors", (x_tr, y_tr), (x_te, y_te), task=ds.task, num_classes=ds.num_classes)


def read_arrays(path: str) -> tuple[Any, Any]:
    """``(x, y)`` from one file; a missing file or unexpected content is `BadInput` naming it."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise BadInput(f"dataset 'tensors': file not found: {file}")
    suffix = file.suffix.lower()
    if suffix in (".pt", ".pth"):
        x, y = _read_pt(file)
    elif suffix == ".npz":
        x, y = _read_npz(file)
    elif suffix in (".h5", ".hdf5"):
        x, y = _read_h5(file)
    else:
        raise BadInput(f"dataset 'tensors': {file}: unsupported file type '{suffix}'; expected {', '.join(SUFFIXES)}")
    if len(x.shape) < 2:
        raise BadInput(f"dataset 'tensors': {file}: x must have shape (N, features...), got {tuple(x.shape)}")
    if len(x) != len(y):
        raise BadInput(f"dataset 'tensors': {file}: x has {len(x)} examples but y has {len(y)}")
    return x, y


def _read_pt(file: Path) -> tuple[Any, Any]:
    expected = "a dict with keys x/y, X/y or data/targets, or an (x, y) tuple of tensors"
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for refused payloads, RuntimeError for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"dataset 'tensors': {file}: not a plain tensor file ({first}); expected {expected}") from None
    if isinstance(obj, dict):
        for kx, ky in PT_KEYS:
            if kx in obj and ky in obj:
                return _array(obj[kx], file, kx), _array(obj[ky], file, ky)
        raise BadInput(f"dataset 'tensors': {file}: keys {sorted(map(str, obj))} found; expected {expected}")
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        return _array(obj[0], file, "x"), _array(obj[1], file, "y")
    raise BadInput(f"dataset 'tensors': {file}: holds a {type(obj).__name__}; expected {expected}")


def _read_npz(file: Path) -> tuple[Any, Any]:
    try:
        with np.load(file, allow_pickle=False) as archive:
            keys = set(archive.files)
            kx = "x" if "x" in keys else "X"
            if kx not in keys or "y" not in keys:
                raise BadInput(f"dataset 'tensors': {file}: arrays {sorted(keys)} found; expected arrays x and y")
            return archive[kx], archive["y"]
    except BadInput:
        raise
    except Exception as exc:  # not a zip, or object arrays that would need pickle
        raise BadInput(f"dataset 'tensors': {file}: not a readable .npz archive of x and y ({exc})") from None


def _read_h5(file: Path) -> tuple[Any, Any]:
    import h5py  # deferred: only HDF5 datasets need it

    try:
        with h5py.File(file, "r") as h5:
            kx = "x" if "x" in h5 else "X"
            if not (isinstance(h5.get(kx), h5py.Dataset) and isinstance(h5.get("y"), h5py.Dataset)):
                raise BadInput(f"dataset 'tensors': {file}: entries {sorted(h5)} found; expected datasets x and y")
            return h5[kx][()], h5["y"][()]
    except BadInput:
        raise
    except Exception as exc:  # not an HDF5 file
        raise BadInput(f"dataset 'tensors': {file}: not a readable HDF5 file with datasets x and y ({exc})") from None


def _array(value: Any, file: Path, key: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return np.asarray(value)
    except Exception:
        raise BadInput(f"dataset 'tensors': {file}: '{key}' is a {type(value).__name__}, not an array") from None
