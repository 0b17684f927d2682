"""`Catalog`: the one object through which lsdb reads and writes its database and files.

Each public method is one transaction and returns frozen records. Writes on SQLite run
under ``BEGIN IMMEDIATE``; inserts that two processes may race on use ``ON CONFLICT DO
NOTHING`` and then read back the winner, so concurrent ingests never duplicate a row.
Files are published to the object store *before* the transaction that refers to them, so a
crash leaves at most an orphan file (removed by `lsdb gc`), never a row without its file.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Text, delete, func, select, type_coerce, update
from sqlalchemy.exc import OperationalError

from lsdb.catalog import models as m
from lsdb.catalog.checkpoints import CHECKPOINT_MEDIA_TYPE, CheckpointsMixin, decode_meta
from lsdb.catalog.engine import WRITE, db_now_ms, describe_connect_error, make_engine
from lsdb.catalog.migrate import ensure_current
from lsdb.catalog.queue import QueueMixin
from lsdb.catalog.records import BlobRecord, MetricRecord, NewRun, RunRecord
from lsdb.catalog.results import ResultsMixin
from lsdb.config import Settings
from lsdb.errors import BadInput, LsdbError, NotFound
from lsdb.store import ObjectStore

__all__ = ["CHECKPOINT_MEDIA_TYPE", "Catalog", "now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Catalog(CheckpointsMixin, ResultsMixin, QueueMixin):
    """The catalog database plus its content-addressed object store."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None, check_schema: bool = True) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.objects = ObjectStore(settings.store_root)
        if check_schema:
            try:
                ensure_current(self.engine)
            except OperationalError as exc:
                raise LsdbError(describe_connect_error(settings.describe(), exc)) from None

    # -- plumbing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.execution_options(**WRITE).begin() as conn:
                yield conn
        except OperationalError as exc:
            if _is_connection_error(exc):
                raise LsdbError(describe_connect_error(self.settings.describe(), exc)) from None
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
                conn.rollback()
        except OperationalError as exc:
            if _is_connection_error(exc):
                raise LsdbError(describe_connect_error(self.settings.describe(), exc)) from None
            raise

    def _insert(self, conn: Connection, table: Any) -> Any:
        if conn.dialect.name == "postgresql":  # imported here: the dialect module is slow to import
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def db_now_ms(self) -> int:
        with self._read() as conn:
            return db_now_ms(conn)

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------------------
    def _ensure_run(self, conn: Connection, new: NewRun) -> tuple[int, bool]:
        """Get or create a run inside the caller's transaction; returns (id, created)."""
        t = m.RunRow.__table__
        stmt = (
            self._insert(conn, t)
            .values(
                project=new.project,
                name=new.name,
                model_spec=new.model_spec,
                dataset_spec=new.dataset_spec,
                loss=new.loss or "cross_entropy",
                status=new.status,
                created_at=now_ms(),
            )
            .on_conflict_do_nothing(index_elements=["project", "name"])
            .returning(t.c.id)
        )
        run_id = conn.execute(stmt).scalar_one_or_none()
        created = run_id is not None
        if run_id is None:
            row = conn.execute(
                select(t.c.id, t.c.model_spec, t.c.dataset_spec, t.c.loss).where(
                    t.c.project == new.project, t.c.name == new.name
                )
            ).one()
            run_id = row.id
            changes: dict[str, Any] = {}
            for col, given, stored in (
                ("model_spec", new.model_spec, row.model_spec),
                ("dataset_spec", new.dataset_spec, row.dataset_spec),
            ):
                if given is None:
                    continue
                if stored is None:
                    changes[col] = given
                elif stored != given:
                    raise BadInput(
                        f"run '{new.name}' already has {col.replace('_', ' ')} {_spec_str(stored)}, "
                        f"not {_spec_str(given)}; use another --run name"
                    )
            if new.loss and new.loss != row.loss:
                changes["loss"] = new.loss
            if changes:
                conn.execute(update(t).where(t.c.id == run_id).values(**changes))
        self._set_params_tags(conn, run_id, new.params, new.tags)
        return run_id, created

    def _set_params_tags(self, conn: Connection, run_id: int, params: dict[str, Any], tags: dict[str, str]) -> None:
        for key, value in params.items():
            num, text = _typed_value(value)
            p = m.RunParamRow.__table__
            ins = self._insert(conn, p).values(run_id=run_id, key=key, value_num=num, value_str=text)
            conn.execute(
                ins.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value_num": num, "value_str": text})
            )
        for key, value in tags.items():
            tg = m.RunTagRow.__table__
            ins = self._insert(conn, tg).values(run_id=run_id, key=key, value=str(value))
            conn.execute(ins.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": str(value)}))

    def add_run(self, new: NewRun) -> RunRecord:
        """Get or create a run (and set its params and tags)."""
        with self._write() as conn:
            run_id, _ = self._ensure_run(conn, new)
        return self.get_run(run_id)

    def set_run_status(self, run_id: int, status: str) -> None:
        with self._write() as conn:
            conn.execute(update(m.RunRow.__table__).where(m.RunRow.id == run_id).values(status=status))

    def find_run(self, name: str, project: str | None = None) -> RunRecord | None:
        try:
            return self.get_run(name, project)
        except NotFound:
            return None

    def get_run(self, ref: int | str, project: str | None = None) -> RunRecord:
        """A run by id, or by name (within `project` when given); `NotFound` otherwise."""
        t = m.RunRow.__table__
        with self._read() as conn:
            q = select(t)
            if isinstance(ref, int):
                q = q.where(t.c.id == ref)
            else:
                q = q.where(t.c.name == ref)
                if project is not None:
                    q = q.where(t.c.project == project)
            rows = conn.execute(q).all()
            if not rows:
                where = f" in project '{project}'" if project else ""
                raise NotFound(f"run '{ref}' not found{where}; see `lsdb runs`")
            if len(rows) > 1:
                projects = ", ".join(sorted(r.project for r in rows))
                raise BadInput(f"run name '{ref}' exists in several projects ({projects}); pass --project")
            return self._run_records(conn, rows)[0]

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        t = m.RunRow.__table__
        with self._read() as conn:
            q = select(t).order_by(t.c.project, t.c.id)
            if project is not None:
                q = q.where(t.c.project == project)
            return self._run_records(conn, conn.execute(q).all())

    def _run_records(self, conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        c = m.CheckpointRow.__table__
        counts: dict[int, int] = dict(
            conn.execute(select(c.c.run_id, func.count()).where(c.c.run_id.in_(ids)).group_by(c.c.run_id)).all()
        )
        params: dict[int, dict[str, Any]] = {i: {} for i in ids}
        p = m.RunParamRow.__table__
        for r in conn.execute(select(p).where(p.c.run_id.in_(ids))):
            params[r.run_id][r.key] = r.value_num if r.value_num is not None else r.value_str
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        tg = m.RunTagRow.__table__
        for r in conn.execute(select(tg).where(tg.c.run_id.in_(ids))):
            tags[r.run_id][r.key] = r.value
        metrics: dict[int, dict[str, float]] = {i: {} for i in ids}
        s = m.MetricSummaryRow.__table__
        for r in conn.execute(select(s.c.run_id, s.c.key, s.c.last).where(s.c.run_id.in_(ids))):
            metrics[r.run_id][r.key] = r.last
        return [
            RunRecord(
                id=r.id,
                project=r.project,
                name=r.name,
                model_spec=r.model_spec,
                dataset_spec=r.dataset_spec,
                loss=r.loss,
                status=r.status,
                created_at=r.created_at,
                n_checkpoints=int(counts.get(r.id, 0)),
                params=params[r.id],
                tags=tags[r.id],
                metrics=metrics[r.id],
            )
            for r in rows
        ]

    # -- blobs (rows) ---------------------------------------------------------------------
    def _add_blob(self, conn: Connection, digest: str, size: int, media_type: str, path: str) -> None:
        b = m.BlobRow.__table__
        stmt = self._insert(conn, b).values(
            digest=digest, size=size, media_type=media_type, path=path, created_at=now_ms()
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["digest"]))

    # -- metrics -------------------------------------------------------------------------
    def add_metrics(self, run_id: int, items: Iterable[tuple[str, int, float]]) -> None:
        """Append metric values and keep each key's summary (last, min, max, count) current."""
        items = [(k, int(s), float(v)) for k, s, v in items]
        if not items:
            return
        now = now_ms()
        mt = m.MetricRow.__table__
        st = m.MetricSummaryRow.__table__
        with self._write() as conn:
            conn.execute(
                mt.insert(),
                [{"run_id": run_id, "key": k, "step": s, "value": v, "logged_at": now} for k, s, v in items],
            )
            for key in {k for k, _, _ in items}:
                vals = [(s, v) for k, s, v in items if k == key]
                finite = [v for _, v in vals if math.isfinite(v)]
                last_step, last = max(vals, key=lambda sv: sv[0])
                lo = min(finite) if finite else last
                hi = max(finite) if finite else last
                ins = self._insert(conn, st).values(
                    run_id=run_id, key=key, last=last, last_step=last_step, min=lo, max=hi, count=len(vals)
                )
                excluded = ins.excluded
                conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=["run_id", "key"],
                        set_={
                            "last": _case_newer(st, excluded, "last"),
                            "last_step": func.max(st.c.last_step, excluded.last_step)
                            if conn.dialect.name == "sqlite"
                            else func.greatest(st.c.last_step, excluded.last_step),
                            "min": _least(conn, st.c.min, excluded.min),
                            "max": _greatest(conn, st.c.max, excluded.max),
                            "count": st.c.count + excluded.count,
                        },
                    )
                )

    def list_metrics(self, run_id: int, key: str | None = None) -> list[MetricRecord]:
        mt = m.MetricRow.__table__
        with self._read() as conn:
            q = select(mt.c.run_id, mt.c.key, mt.c.step, mt.c.value).where(mt.c.run_id == run_id)
            if key is not None:
                q = q.where(mt.c.key == key)
            return [MetricRecord(*r) for r in conn.execute(q.order_by(mt.c.key, mt.c.step, mt.c.id))]

    # -- blobs ---------------------------------------------------------------------------
    def list_blobs(self) -> list[BlobRecord]:
        b = m.BlobRow.__table__
        with self._read() as conn:
            return [
                BlobRecord(*r)
                for r in conn.execute(select(b.c.digest, b.c.size, b.c.media_type, b.c.path, b.c.created_at))
            ]

    def referenced_blob_digests(self) -> set[str]:
        """Digests some checkpoint or result refers to."""
        with self._read() as conn:
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

    def delete_unreferenced_blobs(self, digests: Iterable[str]) -> list[str]:
        """Delete blob rows that are still unreferenced at commit time; returns the deleted ones."""
        digests = list(digests)
        if not digests:
            return []
        b = m.BlobRow.__table__
        with self._write() as conn:
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


def _is_connection_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(
        s in text
        for s in (
            "connection",
            "could not connect",
            "unable to open",
            "server closed",
            "does not exist",
            "authentication",
        )
    )


def _typed_value(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return float(value), "true" if value else "false"
    if isinstance(value, (int, float)):
        return float(value), None
    return None, str(value)


def _spec_str(spec: dict[str, Any]) -> str:
    kwargs = spec.get("kwargs") or {}
    if not kwargs:
        return str(spec.get("name"))
    return str(spec.get("name")) + ":" + ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


def _case_newer(st: Any, excluded: Any, col: str) -> Any:
    from sqlalchemy import case

    return case((excluded.last_step >= st.c.last_step, getattr(excluded, col)), else_=getattr(st.c, col))


def _least(conn: Connection, a: Any, b: Any) -> Any:
    return func.min(a, b) if conn.dialect.name == "sqlite" else func.least(a, b)


def _greatest(conn: Connection, a: Any, b: Any) -> Any:
    return func.max(a, b) if conn.dialect.name == "sqlite" else func.greatest(a, b)
