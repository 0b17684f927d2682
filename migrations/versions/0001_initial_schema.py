"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29

The whole schema of DESIGN.md section 2. checkpoints.produced_by -> results, results.job_id -> jobs
and jobs.result_id -> results form a cycle: SQLite accepts forward references inline, PostgreSQL
gets those three foreign keys added once every table exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# table -> (column, referred table, constraint name)
_CYCLE = {
    "checkpoints": ("produced_by", "results", "fk_checkpoints_produced_by_results"),
    "results": ("job_id", "jobs", "fk_results_job_id_jobs"),
    "jobs": ("result_id", "results", "fk_jobs_result_id_results"),
}


def _inline_cycle() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _cyclic_fk(table: str) -> list[sa.ForeignKeyConstraint]:
    if not _inline_cycle():
        return []
    column, referred, name = _CYCLE[table]
    return [sa.ForeignKeyConstraint([column], [f"{referred}.id"], name=name, ondelete="SET NULL")]


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blobs")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model_spec", sa.JSON(), nullable=True),
        sa.Column("dataset_spec", sa.JSON(), nullable=True),
        sa.Column("loss", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("project", "name", name="uq_runs_project_name"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=50), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_job", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("epoch", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("tensor_digest", sa.String(length=64), nullable=False),
        sa.Column("schema_digest", sa.String(length=64), nullable=False),
        sa.Column("n_params", sa.BigInteger(), nullable=False),
        sa.Column("n_tensors", sa.Integer(), nullable=False),
        sa.Column("blob_digest", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("produced_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["blob_digest"], ["blobs.digest"], name=op.f("fk_checkpoints_blob_digest_blobs")),
        *_cyclic_fk("checkpoints"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_checkpoints_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("run_id", "tensor_digest", name="uq_checkpoints_run_tensor"),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index("ix_checkpoints_run_step", ["run_id", "step"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkpoints_schema_digest"), ["schema_digest"], unique=False)
        batch_op.create_index("ix_checkpoints_tensor_digest", ["tensor_digest"], unique=False)

    op.create_table(
        "metric_summaries",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_summaries_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_summaries")),
    )
    op.create_table(
        "metrics",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("logged_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metrics_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.create_index("ix_metrics_run_key_step", ["run_id", "key", "step"], unique=False)

    op.create_table(
        "results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("analysis", sa.String(length=100), nullable=False),
        sa.Column("analysis_version", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("device", sa.String(length=50), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("dataset_spec", sa.JSON(), nullable=True),
        sa.Column("artifact_digest", sa.String(length=64), nullable=True),
        sa.Column("lsdb_version", sa.String(length=50), nullable=False),
        sa.Column("plugin_name", sa.String(length=200), nullable=True),
        sa.Column("plugin_version", sa.String(length=50), nullable=True),
        sa.Column("torch_version", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_digest"], ["blobs.digest"], name=op.f("fk_results_artifact_digest_blobs")),
        *_cyclic_fk("results"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
        sa.UniqueConstraint("cache_key", name=op.f("uq_results_cache_key")),
    )
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_results_analysis"), ["analysis"], unique=False)

    op.create_table(
        "run_params",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.Column("value_str", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_params_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_params")),
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_tags_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_tags")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("analysis", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.BigInteger(), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("lease_expires", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat", sa.BigInteger(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_message", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["jobs.id"], name=op.f("fk_jobs_parent_id_jobs"), ondelete="CASCADE"),
        *_cyclic_fk("jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_cache_key", ["cache_key"], unique=False)
        batch_op.create_index("ix_jobs_claim", ["status", "queue", "priority", "run_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "result_arrays",
        sa.Column("result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("blob_digest", sa.String(length=64), nullable=False),
        sa.Column("dtype", sa.String(length=20), nullable=False),
        sa.Column("shape", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["blob_digest"], ["blobs.digest"], name=op.f("fk_result_arrays_blob_digest_blobs")),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_arrays_result_id_results"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("result_id", "name", name=op.f("pk_result_arrays")),
    )
    op.create_table(
        "result_inputs",
        sa.Column("result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"], ["checkpoints.id"], name=op.f("fk_result_inputs_checkpoint_id_checkpoints")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_inputs_result_id_results"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("result_id", "role", "position", name=op.f("pk_result_inputs")),
    )
    with op.batch_alter_table("result_inputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_result_inputs_checkpoint_id"), ["checkpoint_id"], unique=False)

    op.create_table(
        "result_params",
        sa.Column("result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.Column("value_str", sa.Text(), nullable=True),
        sa.Column("value_json", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_params_result_id_results"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("result_id", "key", name=op.f("pk_result_params")),
    )
    op.create_table(
        "result_scalars",
        sa.Column("result_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_scalars_result_id_results"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("result_id", "key", name=op.f("pk_result_scalars")),
    )
    with op.batch_alter_table("result_scalars", schema=None) as batch_op:
        batch_op.create_index("ix_result_scalars_key_value", ["key", "value"], unique=False)

    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_events_job_id"), ["job_id"], unique=False)

    if not _inline_cycle():
        for table, (column, referred, name) in _CYCLE.items():
            op.create_foreign_key(name, table, referred, [column], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    if not _inline_cycle():
        for table, (_column, _referred, name) in _CYCLE.items():
            op.drop_constraint(name, table, type_="foreignkey")
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_job_id"))

    op.drop_table("job_events")
    with op.batch_alter_table("result_scalars", schema=None) as batch_op:
        batch_op.drop_index("ix_result_scalars_key_value")

    op.drop_table("result_scalars")
    op.drop_table("result_params")
    with op.batch_alter_table("result_inputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_result_inputs_checkpoint_id"))

    op.drop_table("result_inputs")
    op.drop_table("result_arrays")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_parent_id"))
        batch_op.drop_index("ix_jobs_claim")
        batch_op.drop_index("ix_jobs_cache_key")

    op.drop_table("jobs")
    op.drop_table("run_tags")
    op.drop_table("run_params")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_results_analysis"))

    op.drop_table("results")
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_run_key_step")

    op.drop_table("metrics")
    op.drop_table("metric_summaries")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_checkpoints_tensor_digest")
        batch_op.drop_index(batch_op.f("ix_checkpoints_schema_digest"))
        batch_op.drop_index("ix_checkpoints_run_step")

    op.drop_table("checkpoints")
    op.drop_table("workers")
    op.drop_table("runs")
    op.drop_table("blobs")
