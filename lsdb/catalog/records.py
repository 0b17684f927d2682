"""Frozen records: what the catalog hands out. ORM rows never leave `lsdb.catalog`."""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
