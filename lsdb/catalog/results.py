"""Analysis results: each repository method is one transaction and returns frozen records.

A result's arrays live in one HDF5 object in the store; its inputs, params, scalars, array
index and any checkpoints it produced are committed here in one transaction, after the
files are published. Two identical requests racing end with one result: the loser of the
``cache_key`` unique constraint reads the winner's row back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from lsdb.catalog import models as m
from lsdb.catalog.blobs import insert_blob
from lsdb.catalog.checkpoints import insert_checkpoint
from lsdb.catalog.database import Database, insert, local_ms
from lsdb.catalog.records import NewCheckpoint, NewResult, NewRun, ResultInputRecord, ResultRecord
from lsdb.catalog.runs import ensure_run, get_run
from lsdb.errors import NotFound

__all__ = ["HDF5_MEDIA_TYPE", "ResultRepository", "insert_result", "result_records"]

HDF5_MEDIA_TYPE = "application/x-hdf5"


class ResultRepository:
    """Commit results (with the checkpoints they produced) and read them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        new: NewResult,
        produced: Sequence[tuple[NewRun, NewCheckpoint]] = (),
        replace: bool = False,
    ) -> tuple[ResultRecord, bool]:
        """Commit a result (and the checkpoints it produced); (record, created)."""
        r = m.ResultRow.__table__
        with self.db.write() as conn:
            result_id, created = insert_result(conn, new, produced, replace)
            record = result_records(conn, [r.c.id == result_id])[0]
        return record, created

    def find(self, cache_key: str) -> ResultRecord | None:
        r = m.ResultRow.__table__
        with self.db.read() as conn:
            rows = result_records(conn, [r.c.cache_key == cache_key])
        return rows[0] if rows else None

    def get(self, result_id: int) -> ResultRecord:
        r = m.ResultRow.__table__
        with self.db.read() as conn:
            rows = result_records(conn, [r.c.id == result_id])
        if not rows:
            raise NotFound(f"result {result_id} not found; see `lsdb results`")
        return rows[0]

    def list(
        self, run: str | int | None = None, analysis: str | None = None, project: str | None = None
    ) -> list[ResultRecord]:
        """Results, newest last; `run` keeps those with an input checkpoint of that run."""
        r = m.ResultRow.__table__
        where: list[Any] = []
        if analysis is not None:
            where.append(r.c.analysis == analysis)
        with self.db.read() as conn:
            if run is not None:
                run_id = get_run(conn, run, project).id
                ri = m.ResultInputRow.__table__
                c = m.CheckpointRow.__table__
                sub = select(ri.c.result_id).join(c, c.c.id == ri.c.checkpoint_id).where(c.c.run_id == run_id)
                where.append(r.c.id.in_(sub))
            return result_records(conn, where)

    def artifact_digests(self, ids: Iterable[int]) -> dict[int, str | None]:
        """The artifact digest of each of these results that exists (None: it has no artifact)."""
        ids = sorted(set(ids))
        if not ids:
            return {}
        r = m.ResultRow.__table__
        with self.db.read() as conn:
            return {int(i): d for i, d in conn.execute(select(r.c.id, r.c.artifact_digest).where(r.c.id.in_(ids)))}


def insert_result(
    conn: Connection,
    new: NewResult,
    produced: Sequence[tuple[NewRun, NewCheckpoint]] = (),
    replace: bool = False,
) -> tuple[int, bool]:
    """`ResultRepository.add`'s writes inside the caller's transaction; (result id, created).

    The queue's fenced completion calls this and updates the job in the same transaction.
    """
    r = m.ResultRow.__table__
    if replace:
        conn.execute(delete(r).where(r.c.cache_key == new.cache_key))
    insert_blob(conn, new.artifact_digest, new.artifact_size, HDF5_MEDIA_TYPE, new.artifact_path)
    stmt = (
        insert(conn, r)
        .values(
            analysis=new.analysis,
            analysis_version=new.analysis_version,
            cache_key=new.cache_key,
            job_id=new.job_id,
            device=new.device,
            seed=new.seed,
            wall_seconds=new.wall_seconds,
            dataset_spec=new.dataset_spec,
            artifact_digest=new.artifact_digest,
            lsdb_version=new.lsdb_version,
            plugin_name=new.plugin_name,
            plugin_version=new.plugin_version,
            torch_version=new.torch_version,
            created_at=local_ms(),
        )
        .on_conflict_do_nothing(index_elements=["cache_key"])
        .returning(r.c.id)
    )
    result_id = conn.execute(stmt).scalar_one_or_none()
    if result_id is None:  # an identical request committed first
        return conn.execute(select(r.c.id).where(r.c.cache_key == new.cache_key)).scalar_one(), False
    if new.inputs:
        conn.execute(
            m.ResultInputRow.__table__.insert(),
            [
                {"result_id": result_id, "role": role, "position": pos, "checkpoint_id": cid}
                for role, pos, cid in new.inputs
            ],
        )
    if new.params:
        conn.execute(
            m.ResultParamRow.__table__.insert(),
            [{"result_id": result_id, "key": k, **_param_columns(v)} for k, v in new.params.items()],
        )
    if new.scalars:
        conn.execute(
            m.ResultScalarRow.__table__.insert(),
            [{"result_id": result_id, "key": k, "value": float(v)} for k, v in new.scalars.items()],
        )
    if new.arrays:
        conn.execute(
            m.ResultArrayRow.__table__.insert(),
            [
                {
                    "result_id": result_id,
                    "name": name,
                    "blob_digest": new.artifact_digest,
                    "dtype": dtype,
                    "shape": list(shape),
                }
                for name, (dtype, shape) in new.arrays.items()
            ],
        )
    for run, ckpt in produced:
        run_id, _ = ensure_run(conn, run)
        insert_checkpoint(conn, run_id, dataclasses.replace(ckpt, source_path=None, produced_by=result_id))
    return result_id, True


def result_records(conn: Connection, where: list[Any]) -> list[ResultRecord]:
    """Records of the results matching `where`, with their params, scalars, inputs, arrays and products."""
    r = m.ResultRow.__table__
    rows = conn.execute(select(r).where(*where).order_by(r.c.id)).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    params: dict[int, dict[str, Any]] = {i: {} for i in ids}
    p = m.ResultParamRow.__table__
    for row in conn.execute(select(p).where(p.c.result_id.in_(ids))):
        params[row.result_id][row.key] = row.value_json
    scalars: dict[int, dict[str, float]] = {i: {} for i in ids}
    s = m.ResultScalarRow.__table__
    for row in conn.execute(select(s).where(s.c.result_id.in_(ids))):
        scalars[row.result_id][row.key] = row.value
    inputs: dict[int, list[ResultInputRecord]] = {i: [] for i in ids}
    ri = m.ResultInputRow.__table__
    c = m.CheckpointRow.__table__
    rn = m.RunRow.__table__
    q = (
        select(
            ri.c.result_id,
            ri.c.role,
            ri.c.position,
            ri.c.checkpoint_id,
            rn.c.name,
            rn.c.project,
            c.c.step,
            c.c.epoch,
            c.c.tensor_digest,
        )
        .join(c, c.c.id == ri.c.checkpoint_id)
        .join(rn, rn.c.id == c.c.run_id)
        .where(ri.c.result_id.in_(ids))
        .order_by(ri.c.result_id, ri.c.role, ri.c.position)
    )
    for row in conn.execute(q):
        inputs[row.result_id].append(ResultInputRecord(*row[1:]))
    arrays: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in ids}
    a = m.ResultArrayRow.__table__
    for row in conn.execute(select(a).where(a.c.result_id.in_(ids)).order_by(a.c.name)):
        arrays[row.result_id][row.name] = {"dtype": row.dtype, "shape": list(row.shape)}
    produced: dict[int, list[int]] = {i: [] for i in ids}
    for row in conn.execute(select(c.c.produced_by, c.c.id).where(c.c.produced_by.in_(ids)).order_by(c.c.id)):
        produced[row.produced_by].append(row.id)
    return [
        ResultRecord(
            id=row.id,
            analysis=row.analysis,
            analysis_version=row.analysis_version,
            cache_key=row.cache_key,
            job_id=row.job_id,
            device=row.device,
            seed=row.seed,
            wall_seconds=row.wall_seconds,
            dataset_spec=row.dataset_spec,
            artifact_digest=row.artifact_digest,
            lsdb_version=row.lsdb_version,
            plugin_name=row.plugin_name,
            plugin_version=row.plugin_version,
            torch_version=row.torch_version,
            created_at=row.created_at,
            params=params[row.id],
            scalars=scalars[row.id],
            inputs=inputs[row.id],
            arrays=arrays[row.id],
            produced=produced[row.id],
        )
        for row in rows
    ]


def _param_columns(value: Any) -> dict[str, Any]:
    num = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(value, bool):
        num = float(value)
    text = value if isinstance(value, str) else None
    return {"value_num": num, "value_str": text, "value_json": value}
