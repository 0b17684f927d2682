"""The catalog's tables as SQLAlchemy 2 typed ORM classes (``*Row``).

Alembic revisions under ``migrations/versions`` are the schema's source of truth; these
classes must match them (a test compares the two). Times are UTC epoch milliseconds.
Rows never leave `lsdb.catalog`: the store converts them to frozen records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Integer primary keys: BIGINT on servers, INTEGER (the rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}

    if TYPE_CHECKING:
        # Every row class here is mapped to a `Table` (never a subquery or join), so narrow
        # SQLAlchemy's declared `FromClause` and let `Row.__table__.insert()` etc. type-check.
        __table__: ClassVar[Table]


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_runs_project_name"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(200), default="default")
    name: Mapped[str] = mapped_column(String(200))
    model_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dataset_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    loss: Mapped[str] = mapped_column(String(50), default="cross_entropy")
    status: Mapped[str] = mapped_column(String(20), default="complete")
    notes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RunParamRow(Base):
    __tablename__ = "run_params"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value_num: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_str: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    logged_at: Mapped[int] = mapped_column(BigInteger)


class MetricSummaryRow(Base):
    """Per-(run, key) summary, kept up to date on every metric write."""

    __tablename__ = "metric_summaries"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[float] = mapped_column(Float)
    last_step: Mapped[int] = mapped_column(BigInteger)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger)


class BlobRow(Base):
    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        UniqueConstraint("run_id", "tensor_digest", name="uq_checkpoints_run_tensor"),
        Index("ix_checkpoints_run_step", "run_id", "step"),
        Index("ix_checkpoints_tensor_digest", "tensor_digest"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    epoch: Mapped[float | None] = mapped_column(Float, nullable=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tensor_digest: Mapped[str] = mapped_column(String(64))
    schema_digest: Mapped[str] = mapped_column(String(64), index=True)
    n_params: Mapped[int] = mapped_column(BigInteger)
    n_tensors: Mapped[int] = mapped_column(Integer)
    blob_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    produced_by: Mapped[int | None] = mapped_column(
        ForeignKey("results.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    nonfinite: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class ResultRow(Base):
    __tablename__ = "results"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    analysis: Mapped[str] = mapped_column(String(100), index=True)
    analysis_version: Mapped[int] = mapped_column(Integer)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    device: Mapped[str | None] = mapped_column(String(50), nullable=True)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    wall_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    dataset_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artifact_digest: Mapped[str | None] = mapped_column(ForeignKey("blobs.digest"), nullable=True)
    lsdb_version: Mapped[str] = mapped_column(String(50))
    plugin_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    plugin_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    torch_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ResultInputRow(Base):
    __tablename__ = "result_inputs"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"), index=True)


class ResultParamRow(Base):
    __tablename__ = "result_params"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value_num: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_str: Mapped[str | None] = mapped_column(Text, nullable=True)
    value_json: Mapped[Any] = mapped_column(JSON, nullable=True)


class ResultScalarRow(Base):
    __tablename__ = "result_scalars"
    __table_args__ = (Index("ix_result_scalars_key_value", "key", "value"),)

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ResultArrayRow(Base):
    __tablename__ = "result_arrays"

    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    blob_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    dtype: Mapped[str] = mapped_column(String(20))
    shape: Mapped[list[Any]] = mapped_column(JSON)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "queue", "priority", "run_after"),
        Index("ix_jobs_cache_key", "cache_key"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    analysis: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    cache_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queue: Mapped[str] = mapped_column(String(100), default="default")
    resource: Mapped[str] = mapped_column(String(20), default="cpu")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[int] = mapped_column(BigInteger)
    time_limit_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    heartbeat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True, index=True)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("results.id", ondelete="SET NULL"), nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class JobEventRow(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(50))
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(50))
    queues: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="idle")
    current_job: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    started_at: Mapped[int] = mapped_column(BigInteger)
    heartbeat: Mapped[int] = mapped_column(BigInteger)
