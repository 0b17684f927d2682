"""Frozen records: what the catalog hands out. ORM rows never leave `lsdb.catalog`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    id: int
    project: str
    name: str
    model_spec: dict[str, Any] | None
    dataset_spec: dict[str, Any] | None
    loss: str
    status: str
    created_at: int
    n_checkpoints: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckpointRecord:
    id: int
    run_id: int
    project: str
    run: str
    step: int | None
    epoch: float | None
    label: str | None
    tensor_digest: str
    schema_digest: str
    n_params: int
    n_tensors: int
    blob_digest: str
    source_path: str | None
    produced_by: int | None
    meta: dict[str, Any] | None
    created_at: int
    #: some weight is NaN or infinite (analyses refuse it unless asked: --allow-nonfinite)
    nonfinite: bool = False

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: asdict's deep copy is the bottleneck of 100k-row listings
        return dict(self.__dict__)


@dataclass(frozen=True)
class BlobRecord:
    digest: str
    size: int
    media_type: str
    path: str
    created_at: int


@dataclass(frozen=True)
class MetricRecord:
    run_id: int
    key: str
    step: int
    value: float


@dataclass(frozen=True)
class NewRun:
    """What to create when a run does not exist yet (and to check when it does)."""

    name: str
    project: str = "default"
    model_spec: dict[str, Any] | None = None
    dataset_spec: dict[str, Any] | None = None
    loss: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "complete"


@dataclass(frozen=True)
class NewCheckpoint:
    """A checkpoint whose blob is already in the object store."""

    tensor_digest: str
    schema_digest: str
    n_params: int
    n_tensors: int
    blob_digest: str
    blob_size: int
    blob_path: str
    step: int | None = None
    epoch: float | None = None
    label: str | None = None
    source_path: str | None = None
    meta: dict[str, Any] | None = None
    produced_by: int | None = None
    nonfinite: bool = False


@dataclass(frozen=True)
class ResultInputRecord:
    role: str
    position: int
    checkpoint_id: int
    run: str
    project: str
    step: int | None
    epoch: float | None
    tensor_digest: str


@dataclass(frozen=True)
class ResultRecord:
    id: int
    analysis: str
    analysis_version: int
    cache_key: str
    job_id: int | None
    device: str | None
    seed: int | None
    wall_seconds: float | None
    dataset_spec: dict[str, Any] | None
    artifact_digest: str | None
    lsdb_version: str
    plugin_name: str | None
    plugin_version: str | None
    torch_version: str | None
    created_at: int
    params: dict[str, Any] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    inputs: list[ResultInputRecord] = field(default_factory=list)
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    produced: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewResult:
    """A computed result whose artifact (and any new checkpoints' blobs) are already published."""

    analysis: str
    analysis_version: int
    cache_key: str
    params: dict[str, Any]
    scalars: dict[str, float]
    inputs: list[tuple[str, int, int]]  # (role, position, checkpoint id)
    arrays: dict[str, tuple[str, list[int]]]  # name -> (dtype, shape), all in the artifact
    artifact_digest: str
    artifact_size: int
    artifact_path: str
    lsdb_version: str
    dataset_spec: dict[str, Any] | None = None
    device: str | None = None
    seed: int | None = None
    wall_seconds: float | None = None
    job_id: int | None = None
    plugin_name: str | None = None
    plugin_version: str | None = None
    torch_version: str | None = None


def decode_meta(raw: Any) -> dict[str, Any] | None:
    """A checkpoint's meta column: text on SQLite (decoded here), already decoded by psycopg."""
    if raw is None or raw == "null":
        return None
    return json.loads(raw) if isinstance(raw, str) else raw
