"""Files: content-addressed objects (checkpoints as canonical safetensors) and HDF5 result artifacts."""

from lsdb.store.artifacts import HDF5_MEDIA_TYPE, read_artifact, write_artifact
from lsdb.store.objects import TEMP_PREFIX, BlobInfo, ObjectStore, check_digest

__all__ = [
    "HDF5_MEDIA_TYPE",
    "TEMP_PREFIX",
    "BlobInfo",
    "ObjectStore",
    "check_digest",
    "read_artifact",
    "write_artifact",
]
