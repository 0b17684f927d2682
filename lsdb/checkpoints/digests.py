"""Canonical checkpoint bytes and the digests computed from them.

A checkpoint is stored as safetensors written by this module, never by a third-party writer, so
that the bytes are a pure function of the weights: tensors in sorted-name order, a JSON header
with sorted keys and no `__metadata__`, padded with spaces to a multiple of 8. The sha256 of
those bytes is the checkpoint's `tensor_digest` (docs/architecture.md, "The store": name, dtype, shape and bytes in
sorted key order), and it is also the digest of the stored blob, so ingest hashes once.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections.abc import Mapping

import torch
from torch import Tensor

from lsdb.errors import BadInput

SAFETENSORS_MEDIA_TYPE = "application/x-safetensors"
"""Media type recorded for checkpoint blobs."""

DTYPE_CODES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint64: "U64",
    torch.uint32: "U32",
    torch.uint16: "U16",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
"""The torch dtypes lsdb stores, with their safetensors names."""


def dtype_code(dtype: torch.dtype, name: str = "") -> str:
    """The safetensors name of `dtype`; BadInput (naming the tensor) for dtypes lsdb cannot store."""
    try:
        return DTYPE_CODES[dtype]
    except KeyError:
        where = f"tensor {name!r} has " if name else ""
        raise BadInput(f"{where}dtype {dtype}, which lsdb cannot store") from None


def _raw_bytes(name: str, tensor: Tensor) -> memoryview:
    """A zero-copy byte view of a tensor (a copy only if it is not contiguous on the CPU)."""
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise BadInput(f"tensor {name!r} is {tensor.layout} / quantized; lsdb stores dense tensors only")
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data


def canonical_chunks(tensors: Mapping[str, Tensor]) -> list[memoryview]:
    """The canonical safetensors encoding as buffers: the 8-byte length and header, then each tensor.

    The tensor buffers are views of the tensors' memory, so the caller can hash or write them
    without building one big copy. Concatenated, they are `canonical_bytes(tensors)`.
    """
    if sys.byteorder != "little":  # pragma: no cover - no big-endian targets
        raise NotImplementedError("canonical checkpoint bytes need a little-endian machine")
    header: dict[str, dict[str, object]] = {}
    buffers: list[memoryview] = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        code = dtype_code(tensor.dtype, name)
        buf = _raw_bytes(name, tensor)
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + buf.nbytes]}
        buffers.append(buf)
        offset += buf.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * (-len(text) % 8)
    return [memoryview(struct.pack("<Q", len(text)) + text), *buffers]


def canonical_bytes(tensors: Mapping[str, Tensor]) -> bytes:
    """The canonical safetensors file for `tensors` (readable by `safetensors.torch.load`)."""
    return b"".join(canonical_chunks(tensors))


def tensor_digest(tensors: Mapping[str, Tensor]) -> str:
    """sha256 hex of the canonical bytes: equal for the same weights however they were saved."""
    h = hashlib.sha256()
    for chunk in canonical_chunks(tensors):
        h.update(chunk)
    return h.hexdigest()


def encode_checkpoint(tensors: Mapping[str, Tensor]) -> tuple[bytes, str]:
    """The canonical bytes and their sha256 (the tensor digest), from one pass over the tensors."""
    chunks = canonical_chunks(tensors)
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return b"".join(chunks), h.hexdigest()


def schema_digest(tensors: Mapping[str, Tensor]) -> str:
    """sha256 of the canonical JSON of sorted [name, dtype, shape]: equal schemas can be interpolated."""
    schema = [[name, dtype_code(tensors[name].dtype, name), list(tensors[name].shape)] for name in sorted(tensors)]
    return hashlib.sha256(json.dumps(schema, separators=(",", ":")).encode("utf-8")).hexdigest()


def n_params(tensors: Mapping[str, Tensor]) -> int:
    """The number of elements in floating tensors (parameters and float buffers, not counters)."""
    return sum(t.numel() for t in tensors.values() if t.is_floating_point())
