"""Looking inside stored objects without loading them into torch."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from lsdb.catalog import CatalogDB
from lsdb.errors import StoreError


def safetensors_header(path: str) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes, offsets)."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise StoreError(f"{path}: truncated safetensors object; run `lsdb doctor`")
        (n,) = struct.unpack("<Q", raw)
        header = json.loads(fh.read(n))
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
