"""Runs and their metrics. Each repository method is one transaction and returns frozen records.

A run is get-or-create by (project, name): two processes racing to create one end with one
row (``ON CONFLICT DO NOTHING``, then the winner is read back). Metric values are appended;
each key's summary (last, min, max, count) is kept current in the same transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from lsdb.catalog import models as m
from lsdb.catalog.database import Database, insert, local_ms
from lsdb.catalog.records import MetricRecord, NewRun, RunRecord
from lsdb.errors import BadInput, NotFound

__all__ = ["MetricRepository", "RunRepository", "ensure_run", "get_run", "run_records"]


class RunRepository:
    """Get-or-create runs, read them, set their status."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, new: NewRun) -> RunRecord:
        """Get or create a run (and set its params and tags)."""
        with self.db.write() as conn:
            run_id, _ = ensure_run(conn, new)
            return get_run(conn, run_id)

    def get(self, ref: int | str, project: str | None = None) -> RunRecord:
        """A run by id, or by name (within `project` when given); `NotFound` otherwise."""
        with self.db.read() as conn:
            return get_run(conn, ref, project)

    def find(self, name: str, project: str | None = None) -> RunRecord | None:
        """`get`, or None when there is no such run."""
        try:
            return self.get(name, project)
        except NotFound:
            return None

    def list(self, project: str | None = None) -> list[RunRecord]:
        t = m.RunRow.__table__
        with self.db.read() as conn:
            q = select(t).order_by(t.c.project, t.c.id)
            if project is not None:
                q = q.where(t.c.project == project)
            return run_records(conn, conn.execute(q).all())

    def page(self, project: str | None = None, offset: int = 0, limit: int = 50) -> tuple[int, Sequence[int]]:
        """(how many runs, the ids of those at `offset`..`offset+limit`), by project then name, in SQL."""
        t = m.RunRow.__table__
        where = [t.c.project == project] if project is not None else []
        with self.db.read() as conn:
            total = int(conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one())
            q = select(t.c.id).where(*where).order_by(t.c.project, t.c.name, t.c.id).offset(offset).limit(limit)
            return total, [int(i) for i in conn.execute(q).scalars()]

    def set_status(self, run_id: int, status: str) -> None:
        with self.db.write() as conn:
            conn.execute(update(m.RunRow.__table__).where(m.RunRow.id == run_id).values(status=status))


class MetricRepository:
    """A run's metric values (and per-key summaries)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, run_id: int, items: Iterable[tuple[str, int, float]]) -> None:
        """Append metric values and keep each key's summary (last, min, max, count) current."""
        items = [(k, int(s), float(v)) for k, s, v in items]
        if not items:
            return
        now = local_ms()
        mt = m.MetricRow.__table__
        st = m.MetricSummaryRow.__table__
        with self.db.write() as conn:
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
                ins = insert(conn, st).values(
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

    def list(self, run_id: int, key: str | None = None) -> list[MetricRecord]:
        mt = m.MetricRow.__table__
        with self.db.read() as conn:
            q = select(mt.c.run_id, mt.c.key, mt.c.step, mt.c.value).where(mt.c.run_id == run_id)
            if key is not None:
                q = q.where(mt.c.key == key)
            return [MetricRecord(*r) for r in conn.execute(q.order_by(mt.c.key, mt.c.step, mt.c.id))]


# -- in the caller's transaction ------------------------------------------------------------------


def ensure_run(conn: Connection, new: NewRun) -> tuple[int, bool]:
    """Get or create a run inside the caller's transaction; returns (id, created)."""
    t = m.RunRow.__table__
    stmt = (
        insert(conn, t)
        .values(
            project=new.project,
            name=new.name,
            model_spec=new.model_spec,
            dataset_spec=new.dataset_spec,
            loss=new.loss or "cross_entropy",
            status=new.status,
            created_at=local_ms(),
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
    _set_params_tags(conn, run_id, new.params, new.tags)
    return run_id, created


def get_run(conn: Connection, ref: int | str, project: str | None = None) -> RunRecord:
    """`RunRepository.get` inside the caller's transaction."""
    t = m.RunRow.__table__
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
    return run_records(conn, rows)[0]


def run_records(conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
    """Records of `runs` rows, with their checkpoint counts, params, tags and last metric values."""
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


def _set_params_tags(conn: Connection, run_id: int, params: dict[str, Any], tags: dict[str, str]) -> None:
    for key, value in params.items():
        num, text = _typed_value(value)
        p = m.RunParamRow.__table__
        ins = insert(conn, p).values(run_id=run_id, key=key, value_num=num, value_str=text)
        conn.execute(
            ins.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value_num": num, "value_str": text})
        )
    for key, value in tags.items():
        tg = m.RunTagRow.__table__
        ins = insert(conn, tg).values(run_id=run_id, key=key, value=str(value))
        conn.execute(ins.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": str(value)}))


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
    return case((excluded.last_step >= st.c.last_step, getattr(excluded, col)), else_=getattr(st.c, col))


def _least(conn: Connection, a: Any, b: Any) -> Any:
    return func.min(a, b) if conn.dialect.name == "sqlite" else func.least(a, b)


def _greatest(conn: Connection, a: Any, b: Any) -> Any:
    return func.max(a, b) if conn.dialect.name == "sqlite" else func.greatest(a, b)
