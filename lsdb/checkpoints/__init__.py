"""Reading checkpoint files safely, canonical bytes and digests (flat vectors: `lsdb.landscape.params`)."""

from lsdb.checkpoints.digests import (
    DTYPE_CODES,
    SAFETENSORS_MEDIA_TYPE,
    canonical_bytes,
    canonical_chunks,
    dtype_code,
    encode_checkpoint,
    n_params,
    schema_digest,
    tensor_digest,
)
from lsdb.checkpoints.formats import (
    CheckpointFormat,
    LoadedCheckpoint,
    builtin_formats,
    format_for,
    known_suffixes,
    normalize_state_dict,
    read_checkpoint,
    register_builtin_formats,
)

__all__ = [
    "DTYPE_CODES",
    "SAFETENSORS_MEDIA_TYPE",
    "CheckpointFormat",
    "LoadedCheckpoint",
    "builtin_formats",
    "canonical_bytes",
    "canonical_chunks",
    "dtype_code",
    "encode_checkpoint",
    "format_for",
    "known_suffixes",
    "n_params",
    "normalize_state_dict",
    "read_checkpoint",
    "register_builtin_formats",
    "schema_digest",
    "tensor_digest",
]
