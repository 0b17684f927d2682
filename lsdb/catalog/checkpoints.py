"""Catalog methods for checkpoints (mixed into `Catalog`; each public method one transaction).

A checkpoint row points at its weights' blob, published to the store before the row is
committed. The same weights in the same run are the same checkpoint (unique tensor digest per
run): a second insert reads the first row back. Listings come as records, or as plain tuples
for printing 10^5 of them (`list_checkpoint_rows`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Text, select, type_coerce

from lsdb.catalog import models as m
from lsdb.catalog.records import CheckpointRecord, NewCheckpoint, NewRun, RunRecord
from lsdb.errors import NotFound

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

CHECKPOINT_MEDIA_TYPE = "application/vnd.safetensors"


class CheckpointsMixin:
    if TYPE_CHECKING:  # provided by `Catalog`, which this class is mixed into
        def _write(self) -> AbstractContextManager[Connection]: ...
        def _read(self) -> AbstractContextManager[Connection]: ...
        def _insert(self, conn: Connection, table: Any) -> Any: ...
        def _add_blob(self, conn: Connection, digest: str, size: int, media_type: str, path: str) -> None: ...
        def _ensure_run(self, conn: Connection, new: NewRun) -> tuple[int, bool]: ...
        def get_run(self, ref: int | str, project: str | None = None) -> RunRecord: ...

    def add_checkpoint(self, run: NewRun | int, ckpt: NewCheckpoint) -> tuple[CheckpointRecord, bool]:
        """Record a checkpoint whose blob is already published; (record, created).

        Get-or-create the run (or take an existing run's id), the blob row and the checkpoint row
        in one transaction. The same weights in the same run are the same checkpoint: the
        existing one comes back.
        """
        with self._write() as conn:
            run_id = run if isinstance(run, int) else self._ensure_run(conn, run)[0]
            return self._add_checkpoint_in(conn, run_id, ckpt)

    def add_checkpoints(self, run_id: int, ckpts: Sequence[NewCheckpoint]) -> list[tuple[CheckpointRecord, bool]]:
        """`add_checkpoint` for several checkpoints of an existing run, in one transaction (all or none)."""
        with self._write() as conn:
            return [self._add_checkpoint_in(conn, run_id, ckpt) for ckpt in ckpts]

    def _add_checkpoint_in(self, conn: Connection, run_id: int, ckpt: NewCheckpoint) -> tuple[CheckpointRecord, bool]:
        """The blob row and the checkpoint row in the caller's transaction; (record, created)."""
        from lsdb.catalog.store import now_ms

        self._add_blob(conn, ckpt.blob_digest, ckpt.blob_size, CHECKPOINT_MEDIA_TYPE, ckpt.blob_path)
        c = m.CheckpointRow.__table__
        stmt = (
            self._insert(conn, c)
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
                created_at=now_ms(),
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
        record = self._checkpoint_records(conn, [c.c.id == new_id])[0]
        return record, created

    def get_checkpoint(self, checkpoint_id: int) -> CheckpointRecord:
        with self._read() as conn:
            rows = self._checkpoint_records(conn, [m.CheckpointRow.__table__.c.id == checkpoint_id])
        if not rows:
            raise NotFound(f"checkpoint {checkpoint_id} not found; see `lsdb checkpoints`")
        return rows[0]

    def list_checkpoints(
        self, run: str | int | None = None, project: str | None = None, limit: int | None = None
    ) -> list[CheckpointRecord]:
        """Checkpoints ordered by run, then step (a run's trajectory), then id."""
        where = self._checkpoint_where(run, project)
        with self._read() as conn:
            return self._checkpoint_records(conn, where, limit=limit)

    def list_checkpoint_rows(
        self, run: str | int | None = None, project: str | None = None, limit: int | None = None
    ) -> list[tuple[Any, ...]]:
        """`list_checkpoints` as plain tuples in `CheckpointRecord`'s field order, `meta` as JSON text
        (``"null"`` when there is none): the fastest form, for printing 10^5 rows as JSON. On SQLite the
        rows come straight from the driver's cursor (SQLAlchemy's row objects cost as much as the query)."""
        query = self._checkpoint_query(self._checkpoint_where(run, project), limit)
        with self._read() as conn:
            if conn.dialect.name == "sqlite":
                compiled = query.compile(dialect=conn.dialect)
                params = [compiled.params[k] for k in compiled.positiontup or ()]
                driver = conn.connection.driver_connection
                assert driver is not None
                rows: list[tuple[Any, ...]] = driver.execute(str(compiled), params).fetchall()
                return [r if r[14] is not None else (*r[:14], "null", r[15]) for r in rows]
            return [(*r[:14], json.dumps(r[14]), r[15]) for r in conn.execute(query).all()]

    def schema_digests(self, run_id: int) -> set[str]:
        c = m.CheckpointRow.__table__
        with self._read() as conn:
            return set(conn.execute(select(c.c.schema_digest).where(c.c.run_id == run_id).distinct()).scalars())

    def _checkpoint_records(
        self, conn: Connection, where: list[Any], limit: int | None = None
    ) -> list[CheckpointRecord]:
        rows = conn.execute(self._checkpoint_query(where, limit)).all()
        # meta is decoded by hand: most rows hold JSON null, and json.loads per row dominates big listings
        return [
            # one starred tuple: mypy cannot count `*row[:14]` followed by more positional arguments
            CheckpointRecord(*(*row[:14], decode_meta(row[14]), row[15]))
            for row in rows
        ]

    def _checkpoint_where(self, run: str | int | None, project: str | None) -> list[Any]:
        """The filter of a listing: one run (by id or name), or every run of a project, or all."""
        if run is not None:
            return [m.CheckpointRow.__table__.c.run_id == self.get_run(run, project).id]
        if project is not None:
            return [m.RunRow.__table__.c.project == project]
        return []

    @staticmethod
    def _checkpoint_query(where: list[Any], limit: int | None) -> Any:
        """Checkpoint columns in `CheckpointRecord` order (meta as text), ordered by run then step."""
        c = m.CheckpointRow.__table__
        r = m.RunRow.__table__
        q = (
            select(
                c.c.id,
                c.c.run_id,
                r.c.project,
                r.c.name,
                c.c.step,
                c.c.epoch,
                c.c.label,
                c.c.tensor_digest,
                c.c.schema_digest,
                c.c.n_params,
                c.c.n_tensors,
                c.c.blob_digest,
                c.c.source_path,
                c.c.produced_by,
                type_coerce(c.c.meta, Text),
                c.c.created_at,
            )
            .join(r, r.c.id == c.c.run_id)
            .where(*where)
            .order_by(r.c.project, r.c.name, c.c.step, c.c.id)
        )
        if limit is not None:
            q = q.limit(limit)
        return q


def decode_meta(raw: Any) -> dict[str, Any] | None:
    """The meta column: text on SQLite (decoded here), already decoded by psycopg."""
    if raw is None or raw == "null":
        return None
    return json.loads(raw) if isinstance(raw, str) else raw
