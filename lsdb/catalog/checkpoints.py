"""Checkpoints: each repository method is one transaction and returns frozen records.

A checkpoint row points at its weights' blob, published to the store before the row is
committed. The same weights in the same run are the same checkpoint (unique tensor digest per
run): a second insert reads the first row back. Listings come as records, or as plain tuples
for printing 10^5 of them (`CheckpointRepository.list_rows`).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Text, select, type_coerce

from lsdb.catalog import models as m
from lsdb.catalog.blobs import insert_blob
from lsdb.catalog.database import Database, insert, local_ms
from lsdb.catalog.records import CheckpointRecord, NewCheckpoint, NewRun, decode_meta
from lsdb.catalog.runs import ensure_run, get_run
from lsdb.errors import NotFound

__all__ = ["CHECKPOINT_COLUMNS", "CHECKPOINT_MEDIA_TYPE", "CheckpointRepository", "insert_checkpoint"]

CHECKPOINT_MEDIA_TYPE = "application/vnd.safetensors"
CHECKPOINT_COLUMNS = (
    "id", "run_id", "project", "run", "step", "epoch", "label", "tensor_digest", "schema_digest", "n_params",
    "n_tensors", "blob_digest", "source_path", "produced_by", "meta", "created_at", "nonfinite",
)
"""The columns of a checkpoint listing's rows: `CheckpointRecord`'s fields, in its order."""
_META = CHECKPOINT_COLUMNS.index("meta")


class CheckpointRepository:
    """Record published checkpoints and list them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, run: NewRun | int, ckpt: NewCheckpoint) -> tuple[CheckpointRecord, bool]:
        """Record a checkpoint whose blob is already published; (record, created).

        Get-or-create the run (or take an existing run's id), the blob row and the checkpoint row
        in one transaction. The same weights in the same run are the same checkpoint: the
        existing one comes back.
        """
        with self.db.write() as conn:
            run_id = run if isinstance(run, int) else ensure_run(conn, run)[0]
            return insert_checkpoint(conn, run_id, ckpt)

    def add_many(self, run_id: int, ckpts: Sequence[NewCheckpoint]) -> list[tuple[CheckpointRecord, bool]]:
        """`add` for several checkpoints of an existing run, in one transaction (all or none)."""
        with self.db.write() as conn:
            return [insert_checkpoint(conn, run_id, ckpt) for ckpt in ckpts]

    def get(self, checkpoint_id: int) -> CheckpointRecord:
        with self.db.read() as conn:
            rows = _records(conn, [m.CheckpointRow.__table__.c.id == checkpoint_id])
        if not rows:
            raise NotFound(f"checkpoint {checkpoint_id} not found; see `lsdb checkpoints`")
        return rows[0]

    def list(
        self, run: str | int | None = None, project: str | None = None, limit: int | None = None
    ) -> list[CheckpointRecord]:
        """Checkpoints ordered by run, then step (a run's trajectory), then id."""
        with self.db.read() as conn:
            return _records(conn, _where(conn, run, project), limit=limit)

    def list_rows(
        self, run: str | int | None = None, project: str | None = None, limit: int | None = None
    ) -> builtins.list[tuple[Any, ...]]:
        """`list` as plain tuples of `CHECKPOINT_COLUMNS`, `meta` as JSON text (``"null"`` when there
        is none): the fastest form, for printing 10^5 rows as JSON. On SQLite the rows come straight
        from the driver's cursor (SQLAlchemy's row objects cost as much as the query)."""
        with self.db.read() as conn:
            query = _query(_where(conn, run, project), limit)
            if conn.dialect.name == "sqlite":
                compiled = query.compile(dialect=conn.dialect)
                params = [compiled.params[k] for k in compiled.positiontup or ()]
                driver = conn.connection.driver_connection
                assert driver is not None
                rows: list[tuple[Any, ...]] = driver.execute(str(compiled), params).fetchall()
                return [r if r[_META] is not None else (*r[:_META], "null", *r[_META + 1 :]) for r in rows]
            return [(*r[:_META], json.dumps(r[_META]), *r[_META + 1 :]) for r in conn.execute(query).all()]

    def schema_digests(self, run_id: int) -> set[str]:
        c = m.CheckpointRow.__table__
        with self.db.read() as conn:
            return set(conn.execute(select(c.c.schema_digest).where(c.c.run_id == run_id).distinct()).scalars())


def insert_checkpoint(conn: Connection, run_id: int, ckpt: NewCheckpoint) -> tuple[CheckpointRecord, bool]:
    """The blob row and the checkpoint row in the caller's transaction; (record, created)."""
    insert_blob(conn, ckpt.blob_digest, ckpt.blob_size, CHECKPOINT_MEDIA_TYPE, ckpt.blob_path)
    c = m.CheckpointRow.__table__
    stmt = (
        insert(conn, c)
        .values(
            run_id=run_id,
            step=ckpt.step,
            epoch=ckpt.epoch,
            label=ckpt.label,
            tensor_digest=ckpt.tensor_digest,
            schema_digest=ckpt.schema_digest,
            n_params=ckpt.n_params,
            n_tensors=ckpt.n_tensors,
            blob_digest=ckpt.blob_digest,
            source_path=ckpt.source_path,
            produced_by=ckpt.produced_by,
            meta=ckpt.meta,
            created_at=local_ms(),
            nonfinite=ckpt.nonfinite,
        )
        .on_conflict_do_nothing(index_elements=["run_id", "tensor_digest"])
        .returning(c.c.id)
    )
    new_id = conn.execute(stmt).scalar_one_or_none()
    created = new_id is not None
    if not created:
        new_id = conn.execute(
            select(c.c.id).where(c.c.run_id == run_id, c.c.tensor_digest == ckpt.tensor_digest)
        ).scalar_one()
    record = _records(conn, [c.c.id == new_id])[0]
    return record, created


def _records(conn: Connection, where: list[Any], limit: int | None = None) -> list[CheckpointRecord]:
    rows = conn.execute(_query(where, limit)).all()
    # meta is decoded by hand: most rows hold JSON null, and json.loads per row dominates big listings
    return [
        # one starred tuple: mypy cannot count `*row[:_META]` followed by more positional arguments
        CheckpointRecord(*(*row[:_META], decode_meta(row[_META]), *row[_META + 1 :]))
        for row in rows
    ]


def _where(conn: Connection, run: str | int | None, project: str | None) -> list[Any]:
    """The filter of a listing: one run (by id or name), or every run of a project, or all."""
    if run is not None:
        return [m.CheckpointRow.__table__.c.run_id == get_run(conn, run, project).id]
    if project is not None:
        return [m.RunRow.__table__.c.project == project]
    return []


def _query(where: list[Any], limit: int | None) -> Any:
    """`CHECKPOINT_COLUMNS` (meta as text), ordered by run then step."""
    c = m.CheckpointRow.__table__
    r = m.RunRow.__table__
    columns = {
        **{name: c.c[name] for name in CHECKPOINT_COLUMNS if name in c.c and name != "meta"},
        "project": r.c.project,
        "run": r.c.name,
        "meta": type_coerce(c.c.meta, Text),
    }
    q = (
        select(*(columns[name] for name in CHECKPOINT_COLUMNS))
        .join(r, r.c.id == c.c.run_id)
        .where(*where)
        .order_by(r.c.project, r.c.name, c.c.step, c.c.id)
    )
    if limit is not None:
        q = q.limit(limit)
    return q
