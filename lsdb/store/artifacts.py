"""HDF5 result artifacts: one file per result, readable with plain h5py (docs/architecture.md, "The store").

Arrays become root-level datasets (uncompressed by default, for speed); attributes go on the root
group, numbers and strings as themselves, anything else (dicts, lists, None) as a JSON string. The
names of JSON-encoded attributes are listed in the `lsdb_json_attrs` attribute so that
`read_artifact` gives back exactly what was written. Callers write to a temporary path and
hand it to `ObjectStore.put_file`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import h5py
import numpy as np

from lsdb.errors import BadInput

if TYPE_CHECKING:  # torch is imported only when a tensor is actually given (keeps `lsdb` listings fast)
    import torch

HDF5_MEDIA_TYPE = "application/x-hdf5"
"""Media type recorded for artifact blobs."""
JSON_ATTRS = "lsdb_json_attrs"
"""Root attribute listing the attributes stored as JSON strings."""
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex


def _as_array(name: str, value: np.ndarray | torch.Tensor) -> np.ndarray:
    if not _NAME.fullmatch(name):
        raise BadInput(f"array name {name!r} is not allowed (use letters, digits, '_', '.', '-')")
    if type(value).__module__.startswith("torch"):
        import torch

        tensor = cast("torch.Tensor", value).detach().cpu()
        if tensor.dtype == torch.bfloat16:  # HDF5 has no bfloat16; float32 holds it exactly
            tensor = tensor.float()
        value = tensor.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in _ARRAY_KINDS:
        raise BadInput(f"array {name!r} has dtype {array.dtype}; artifacts hold numeric arrays only")
    return array


def _encode_attr(name: str, value: Any) -> tuple[Any, bool]:
    """The value to store and whether it was JSON-encoded."""
    if isinstance(value, str | bool | int | float | np.generic | np.ndarray):
        return value, False
    try:
        return json.dumps(value, sort_keys=True, allow_nan=True), True
    except (TypeError, ValueError) as exc:
        raise BadInput(f"attribute {name!r} cannot be stored: {exc}") from None


def write_artifact(
    path: Path | str,
    arrays: Mapping[str, np.ndarray | torch.Tensor],
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = None,
) -> None:
    """Write `arrays` as datasets and `attrs` as root attributes into a new HDF5 file at `path`."""
    attrs = dict(attrs or {})
    if JSON_ATTRS in attrs:
        raise BadInput(f"attribute name {JSON_ATTRS!r} is reserved")
    prepared = {name: _as_array(name, value) for name, value in arrays.items()}
    encoded = {name: _encode_attr(name, value) for name, value in attrs.items()}
    with h5py.File(path, "w") as handle:
        for name, array in prepared.items():
            handle.create_dataset(name, data=array, compression=compression if array.ndim else None)
        for name, (value, _) in encoded.items():
            handle.attrs[name] = value
        handle.attrs[JSON_ATTRS] = json.dumps(sorted(name for name, (_, as_json) in encoded.items() if as_json))


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_artifact(path: Path | str | bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and attributes of an artifact (a path, or its bytes already read and verified),
    decoded back to what `write_artifact` was given."""
    try:
        handle = h5py.File(io.BytesIO(path) if isinstance(path, bytes) else path, "r")
    except OSError as exc:
        where = "artifact bytes" if isinstance(path, bytes) else str(path)
        raise BadInput(f"{where}: not a readable HDF5 artifact ({exc})") from None
    with handle:
        arrays = {name: np.asarray(item[()]) for name, item in handle.items() if isinstance(item, h5py.Dataset)}
        raw = {name: _decode_attr(value) for name, value in handle.attrs.items()}
    as_json = set(json.loads(raw.pop(JSON_ATTRS, "[]")))
    attrs = {name: json.loads(value) if name in as_json else value for name, value in raw.items()}
    return arrays, attrs
