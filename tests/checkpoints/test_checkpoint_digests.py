"""Canonical safetensors bytes and the tensor/schema digests computed from them."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load, save_file

from lsdb.checkpoints import (
    DTYPE_CODES,
    canonical_bytes,
    canonical_chunks,
    encode_checkpoint,
    n_params,
    read_checkpoint,
    schema_digest,
    tensor_digest,
)
from lsdb.errors import BadInput


def all_dtypes() -> dict[str, torch.Tensor]:
    """One small tensor of every dtype lsdb stores, with awkward values (negatives, NaN, True)."""
    base = torch.tensor([[-1.5, 0.0, float("nan")], [2.25, -0.0, 1e30]])
    out = {}
    for dtype, code in DTYPE_CODES.items():
        if dtype.is_floating_point:
            out[code] = base.to(dtype)
        elif dtype == torch.bool:
            out[code] = torch.tensor([True, False, True])
        else:
            out[code] = torch.tensor([[0, 1, 2], [3, 4, 5 if "U" in code else -5]]).to(dtype)
    out["scalar"] = torch.tensor(3.5)
    out["empty"] = torch.zeros(0, 4)
    return out


def test_canonical_bytes_are_readable_by_safetensors(tmp_path: Path) -> None:
    tensors = all_dtypes()
    data = canonical_bytes(tensors)
    back = load(data)
    assert sorted(back) == sorted(tensors)
    for name, tensor in tensors.items():
        assert back[name].dtype == tensor.dtype and back[name].shape == tensor.shape, name
        assert torch.equal(back[name].view(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name
    (tmp_path / "c.safetensors").write_bytes(data)
    with safe_open(str(tmp_path / "c.safetensors"), framework="pt") as handle:
        assert handle.metadata() is None
        assert torch.allclose(
            handle.get_tensor("BF16").float(), tensors["BF16"].float(), rtol=0, atol=0, equal_nan=True
        )


def test_canonical_layout_is_sorted_padded_and_has_no_metadata() -> None:
    tensors = {"b": torch.ones(3), "a": torch.zeros(2, dtype=torch.float16), "c.x": torch.tensor([True])}
    data = canonical_bytes(tensors)
    (length,) = struct.unpack("<Q", data[:8])
    assert length % 8 == 0 and (8 + length) % 8 == 0
    text = data[8 : 8 + length]
    assert text.startswith(b"{") and text.rstrip(b" ").endswith(b"}") and len(text) - len(text.rstrip(b" ")) < 8
    header = json.loads(text)
    assert list(header) == ["a", "b", "c.x"] and "__metadata__" not in header
    assert header["a"] == {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}
    assert header["b"] == {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]}
    assert header["c.x"] == {"dtype": "BOOL", "shape": [1], "data_offsets": [16, 17]}
    assert len(data) == 8 + length + 17
    assert data[8 + length + 4 : 8 + length + 16] == torch.ones(3).numpy().tobytes()


def test_digest_is_sha256_of_the_canonical_bytes_and_encode_agrees() -> None:
    tensors = all_dtypes()
    data, digest = encode_checkpoint(tensors)
    assert data == canonical_bytes(tensors) == b"".join(bytes(c) for c in canonical_chunks(tensors))
    assert digest == hashlib.sha256(data).hexdigest() == tensor_digest(tensors)


def test_same_weights_saved_differently_have_one_digest(tmp_path: Path, state_dict: dict) -> None:
    reordered = dict(reversed(list(state_dict.items())))
    torch.save(state_dict, tmp_path / "a.pt")
    torch.save({"model": reordered, "epoch": 4}, tmp_path / "b.pth")
    torch.save({f"module.{k}": v for k, v in state_dict.items()}, tmp_path / "c.pt")
    save_file(reordered, tmp_path / "d.safetensors", metadata={"step": "9"})
    digests = {tensor_digest(read_checkpoint(tmp_path / n).tensors) for n in ("a.pt", "b.pth", "c.pt", "d.safetensors")}
    assert digests == {tensor_digest(state_dict)}
    data = canonical_bytes(state_dict)
    (tmp_path / "e.safetensors").write_bytes(data)
    assert tensor_digest(read_checkpoint(tmp_path / "e.safetensors").tensors) == hashlib.sha256(data).hexdigest()


def test_digest_ignores_memory_layout_but_not_values_names_or_dtypes() -> None:
    base = torch.arange(12.0).reshape(3, 4)
    digest = tensor_digest({"w": base})
    assert tensor_digest({"w": base.t().contiguous().t()}) == digest  # non-contiguous view, same values
    assert tensor_digest({"w": torch.arange(20.0)[4:16].reshape(3, 4) - 4}) == digest  # storage offset
    assert tensor_digest({"w": base.clone().requires_grad_()}) == digest
    changed = base.clone()
    changed[2, 3] = 11.5
    for other in ({"w": changed}, {"v": base}, {"w": base.double()}, {"w": base.reshape(4, 3)}):
        assert tensor_digest(other) != digest


def test_schema_digest_tracks_names_dtypes_shapes_only(state_dict: dict) -> None:
    other = {k: torch.randn_like(v) if v.is_floating_point() else v + 5 for k, v in state_dict.items()}
    assert schema_digest(other) == schema_digest(state_dict)
    assert tensor_digest(other) != tensor_digest(state_dict)
    assert schema_digest({**state_dict, "3.bias": torch.zeros(4)}) != schema_digest(state_dict)
    assert schema_digest({**state_dict, "3.bias": state_dict["3.bias"].half()}) != schema_digest(state_dict)
    expected = json.dumps(
        [[k, "F32" if v.is_floating_point() else "I64", list(v.shape)] for k, v in sorted(state_dict.items())]
    )
    assert schema_digest(state_dict) == hashlib.sha256(expected.replace(", ", ",").encode()).hexdigest()


def test_n_params_counts_floating_elements(state_dict: dict) -> None:
    assert n_params(state_dict) == sum(v.numel() for v in state_dict.values() if v.dtype == torch.float32)
    assert n_params({"w": torch.ones(2, 3, dtype=torch.bfloat16), "n": torch.tensor(4)}) == 6


def test_unsupported_dtype_is_bad_input() -> None:
    with pytest.raises(BadInput, match="tensor 'z' has dtype torch.complex64"):
        tensor_digest({"z": torch.ones(2, dtype=torch.complex64)})
    with pytest.raises(BadInput, match="dense"):
        canonical_bytes({"s": torch.eye(2).to_sparse()})
