"""Files: content-addressed objects (checkpoints as canonical safetensors) and HDF5 result artifacts.

The HDF5 names load on first use, so opening a catalog does not import h5py.
"""

from typing import Any

from lsdb.store.objects import TEMP_PREFIX, BlobInfo, CorruptObject, ObjectStore, check_digest

_ARTIFACTS = ("HDF5_MEDIA_TYPE", "read_artifact", "write_artifact")


def __getattr__(name: str) -> Any:
    if name in _ARTIFACTS:
        from lsdb.store import artifacts

        return getattr(artifacts, name)
    raise AttributeError(f"module 'lsdb.store' has no attribute {name!r}")


__all__ = [
    "HDF5_MEDIA_TYPE",
    "TEMP_PREFIX",
    "BlobInfo",
    "CorruptObject",
    "ObjectStore",
    "check_digest",
    "read_artifact",
    "write_artifact",
]
