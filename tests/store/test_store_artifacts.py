"""HDF5 result artifacts: written by lsdb, readable by plain h5py, decoded back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from lsdb.errors import BadInput
from lsdb.store import ObjectStore, read_artifact, write_artifact

ATTRS = {
    "analysis": "surface",
    "version": 2,
    "seed": 0,
    "wall_s": 1.25,
    "inline": True,
    "params": {"steps": 21, "range": [-1.0, 1.0], "bn": "eval", "norm": None},
    "input_digests": ["ab" * 32, "cd" * 32],
    "note": None,
}


def make_arrays() -> dict:
    return {
        "loss": np.linspace(0, 1, 21 * 21).reshape(21, 21),
        "acc": torch.rand(21, 21, dtype=torch.float32),
        "coords.x": np.arange(21, dtype=np.int64),
        "mask": np.array([True, False]),
        "best": np.float64(0.5),
        "bf16": torch.ones(3, dtype=torch.bfloat16),
        "eig-values_0": np.array([], dtype=np.float32),
    }


def test_round_trip(tmp_path: Path) -> None:
    arrays = make_arrays()
    write_artifact(tmp_path / "r.h5", arrays, ATTRS)
    back, attrs = read_artifact(tmp_path / "r.h5")
    assert attrs == ATTRS
    assert sorted(back) == sorted(arrays)
    assert back["acc"].dtype == np.float32 and np.array_equal(back["acc"], arrays["acc"].numpy())
    assert back["loss"].dtype == np.float64 and np.array_equal(back["loss"], arrays["loss"])
    assert back["coords.x"].dtype == np.int64 and back["mask"].dtype == np.bool_
    assert back["best"].shape == () and float(back["best"]) == 0.5
    assert back["bf16"].dtype == np.float32 and back["bf16"].tolist() == [1.0, 1.0, 1.0]
    assert back["eig-values_0"].shape == (0,)


def test_plain_h5py_reads_it(tmp_path: Path) -> None:
    write_artifact(tmp_path / "r.h5", make_arrays(), ATTRS)
    with h5py.File(tmp_path / "r.h5", "r") as handle:
        assert handle["loss"].shape == (21, 21) and handle["loss"].compression is None
        assert handle.attrs["analysis"] == "surface" and handle.attrs["version"] == 2
        assert json.loads(handle.attrs["params"])["steps"] == 21
        assert json.loads(handle.attrs["input_digests"]) == ATTRS["input_digests"]


def test_compression_is_optional(tmp_path: Path) -> None:
    write_artifact(tmp_path / "z.h5", {"loss": np.zeros((50, 50)), "s": np.float32(1)}, {}, compression="gzip")
    with h5py.File(tmp_path / "z.h5", "r") as handle:
        assert handle["loss"].compression == "gzip"
    assert read_artifact(tmp_path / "z.h5")[1] == {}


def test_artifact_goes_into_the_object_store(tmp_path: Path) -> None:
    write_artifact(tmp_path / "r.h5", make_arrays(), ATTRS)
    store = ObjectStore(tmp_path / "store")
    info = store.put_file(tmp_path / "r.h5")
    assert read_artifact(store.path(info.digest))[1]["analysis"] == "surface"


@pytest.mark.parametrize("name", ["a/b", "", "loss curve", "ü"])
def test_bad_array_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="array name"):
        write_artifact(tmp_path / "bad.h5", {name: np.zeros(2)}, {})
    assert not (tmp_path / "bad.h5").exists()


def test_bad_arrays_and_attributes(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="numeric arrays only"):
        write_artifact(tmp_path / "b.h5", {"names": np.array(["a", "b"], dtype=object)}, {})
    with pytest.raises(BadInput, match="attribute 'f' cannot be stored"):
        write_artifact(tmp_path / "b.h5", {}, {"f": object()})
    with pytest.raises(BadInput, match="reserved"):
        write_artifact(tmp_path / "b.h5", {}, {"lsdb_json_attrs": "x"})


def test_reading_a_non_hdf5_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(BadInput, match="not a readable HDF5 artifact"):
        read_artifact(tmp_path / "x.h5")
