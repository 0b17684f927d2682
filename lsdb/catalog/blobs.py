"""Blob rows: one per object in the store that a checkpoint or a result refers to.

`insert_blob` runs in the transaction that commits the referring row (the file itself is
published before it). `BlobRepository` serves `lsdb gc` and `lsdb doctor`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Text, delete, select, type_coerce
from sqlalchemy.exc import IntegrityError

from lsdb.catalog import models as m
from lsdb.catalog.database import Database, insert, local_ms
from lsdb.catalog.records import BlobRecord, decode_meta

__all__ = ["BlobRepository", "insert_blob"]


def insert_blob(conn: Connection, digest: str, size: int, media_type: str, path: str) -> None:
    """The blob row of a published object, in the caller's transaction (kept when it exists)."""
    b = m.BlobRow.__table__
    stmt = insert(conn, b).values(digest=digest, size=size, media_type=media_type, path=path, created_at=local_ms())
    # DO UPDATE (not DO NOTHING) locks an existing row until the caller commits, so a concurrent
    # `lsdb gc` deleting it either finishes first (the row is inserted again) or waits for us
    conn.execute(stmt.on_conflict_do_update(index_elements=["digest"], set_={"size": stmt.excluded.size}))


class BlobRepository:
    """Listing blob rows, and deleting those nothing refers to."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[BlobRecord]:
        b = m.BlobRow.__table__
        with self.db.read() as conn:
            return [
                BlobRecord(*r)
                for r in conn.execute(select(b.c.digest, b.c.size, b.c.media_type, b.c.path, b.c.created_at))
            ]

    def referenced_digests(self) -> set[str]:
        """Digests some checkpoint or result refers to."""
        with self.db.read() as conn:
            refs = set(conn.execute(select(m.CheckpointRow.blob_digest)).scalars())
            refs |= set(conn.execute(select(m.ResultArrayRow.blob_digest)).scalars())
            refs |= {d for d in conn.execute(select(m.ResultRow.artifact_digest)).scalars() if d}
            # resume states of training runs are referenced from their checkpoint's meta
            c = m.CheckpointRow.__table__
            for raw in conn.execute(select(type_coerce(c.c.meta, Text)).where(c.c.meta.is_not(None))).scalars():
                meta = decode_meta(raw)
                if isinstance(meta, dict) and isinstance(meta.get("resume_state"), str):
                    refs.add(meta["resume_state"])
        return refs

    def delete_unreferenced(self, digests: Iterable[str]) -> builtins.list[str]:
        """Delete blob rows that are still unreferenced at commit time; returns the deleted ones."""
        digests = [*digests]
        if not digests:
            return []
        b = m.BlobRow.__table__
        try:
            return self._delete_unreferenced(b, digests)
        except IntegrityError:  # a row referring to one was committed meanwhile: keep them all this time
            return []

    def _delete_unreferenced(self, b: Any, digests: builtins.list[str]) -> builtins.list[str]:
        with self.db.write() as conn:
            live: set[str | None] = set(
                conn.execute(
                    select(m.CheckpointRow.blob_digest).where(m.CheckpointRow.blob_digest.in_(digests))
                ).scalars()
            )
            live |= set(
                conn.execute(
                    select(m.ResultArrayRow.blob_digest).where(m.ResultArrayRow.blob_digest.in_(digests))
                ).scalars()
            )
            live |= set(
                conn.execute(
                    select(m.ResultRow.artifact_digest).where(m.ResultRow.artifact_digest.in_(digests))
                ).scalars()
            )
            dead = [d for d in digests if d not in live]
            if dead:
                conn.execute(delete(b).where(b.c.digest.in_(dead)))
        return dead
