"""Looking inside stored objects without loading them into torch."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from lsdb.catalog import CatalogDB
from lsdb.errors import StoreError

#: A safetensors header larger than this is refused (the format's own readers cap it at 100 MB).
MAX_HEADER_BYTES = 100 * 2**20


def safetensors_header(path: str) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes, offsets).

    A file whose header is truncated, oversized, not UTF-8 JSON or not a JSON object is a one-line
    `StoreError` (found by fuzzing: it used to raise JSONDecodeError, or read a length of 2^64).
    """
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise StoreError(f"{path}: truncated safetensors object; run `lsdb doctor`")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER_BYTES:
            raise StoreError(f"{path}: not a safetensors object (header of {n} bytes); run `lsdb doctor`")
        text = fh.read(n)
    if len(text) != n:
        raise StoreError(f"{path}: truncated safetensors object; run `lsdb doctor`")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: not a safetensors object (its header is not JSON: {exc}); run `lsdb doctor`"
                         ) from None
    if not isinstance(header, dict):
        raise StoreError(f"{path}: not a safetensors object (its header is not a JSON object); run `lsdb doctor`")
    header.pop("__metadata__", None)
    return header


def describe_checkpoint(catalog: CatalogDB, checkpoint_id: int) -> dict[str, Any]:
    """A checkpoint's record plus its layers (name, dtype, shape) read from the blob's header."""
    rec = catalog.checkpoints.get(checkpoint_id)
    path = catalog.objects.path(rec.blob_digest)
    if not path.exists():
        raise StoreError(f"checkpoint {checkpoint_id}: object {rec.blob_digest[:12]} is missing; run `lsdb doctor`")
    header = safetensors_header(str(path))
    layers = [
        {"name": name, "dtype": v["dtype"], "shape": list(v["shape"]), "numel": math.prod(v["shape"])}
        for name, v in sorted(header.items())
    ]
    return {
        "id": rec.id,
        "project": rec.project,
        "run": rec.run,
        "step": rec.step,
        "epoch": rec.epoch,
        "label": rec.label,
        "n_params": rec.n_params,
        "n_tensors": rec.n_tensors,
        "tensor_digest": rec.tensor_digest,
        "schema_digest": rec.schema_digest,
        "blob": rec.blob_digest,
        "source_path": rec.source_path,
        "produced_by": rec.produced_by,
        "meta": rec.meta,
        "layers": layers,
    }
