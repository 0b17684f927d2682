"""The job queue (`JobRepository`) and its workers (`WorkerRepository`); each public method is one transaction.

The protocol (docs/architecture.md, "The job protocol"): a job is claimed by one
``UPDATE jobs ... WHERE id = (SELECT id ...
ORDER BY priority DESC, id LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING ...`` statement (SKIP
LOCKED on PostgreSQL; the whole transaction under ``BEGIN IMMEDIATE`` on SQLite). The claim
hands the worker a `Fence` (job, worker, attempt): every later write about the job (lease
renewal, success with its result rows, failure, cancellation, release) is an UPDATE that
matches the fence and ``status='running'``, and rolls the whole transaction back with
`JobLost` when it matches nothing. So a worker whose lease expired and was reaped can never
overwrite what the next holder does. "Now" is always the database's clock.

States: queued -> running -> succeeded | failed | cancelled; running -> queued on retry, on
release (SIGTERM, attempt not counted) and on lease expiry (attempt counted). A fan-out parent
is ``waiting`` while its tile jobs run; the transaction that completes the last tile requeues
it (under a lock on the parent row, so two last tiles finishing at once cannot both miss it),
and a failed or cancelled tile fails the parent and cancels its siblings.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, literal_column, select, text, update

from lsdb.catalog import models as m
from lsdb.catalog.database import Database
from lsdb.catalog.engine import db_now_ms
from lsdb.catalog.records import NewCheckpoint, NewResult, NewRun, ResultRecord
from lsdb.catalog.results import insert_result, result_records
from lsdb.errors import BadInput, JobLost, NotFound

ACTIVE = ("queued", "running", "waiting")
_FRESH = {"attempt": 0, "worker_id": None, "lease_expires": None, "finished_at": None, "cancel_requested": False,
          "progress": 0.0, "progress_message": None, "error_type": None, "error_message": None, "error_traceback": None}
FINAL = ("succeeded", "failed", "cancelled")
J: Table = m.JobRow.__table__
E: Table = m.JobEventRow.__table__
W: Table = m.WorkerRow.__table__


@dataclass(frozen=True)
class Fence:
    """Who may finish a job: the worker that claimed this attempt, while the job is running."""

    job_id: int
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue; `payload` is JSON (the request and how to run it)."""

    analysis: str
    payload: dict[str, Any]
    cache_key: str | None = None
    queue: str = "default"
    resource: str = "any"
    priority: int = 0
    max_attempts: int = 3
    time_limit_s: float | None = None


class _AsDict:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class JobRecord(_AsDict):
    id: int
    analysis: str
    payload: dict[str, Any]
    cache_key: str | None
    queue: str
    resource: str
    priority: int
    status: str
    attempt: int
    max_attempts: int
    run_after: int
    time_limit_s: float | None
    worker_id: str | None
    lease_expires: int | None
    heartbeat: int | None
    cancel_requested: bool
    progress: float
    progress_message: str | None
    parent_id: int | None
    result_id: int | None
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    created_at: int
    started_at: int | None
    finished_at: int | None

    @property
    def fence(self) -> Fence:
        return Fence(self.id, self.worker_id or "", self.attempt)


@dataclass(frozen=True)
class JobEventRecord(_AsDict):
    id: int
    job_id: int
    at: int
    kind: str
    worker_id: str | None
    message: str | None


@dataclass(frozen=True)
class WorkerRecord(_AsDict):
    id: str
    host: str
    pid: int
    device: str
    queues: list[Any]
    status: str
    current_job: int | None
    started_at: int
    heartbeat: int


@dataclass(frozen=True)
class Heartbeat:
    """What a lease renewal learned: the job's cancel flag, or that the lease is gone."""

    cancel_requested: bool = False
    lost: bool = False
    #: the job is no longer running because this very attempt committed its final state (the job
    #: process' fenced success, then its listeners): not a lost lease
    finished: bool = False


def _fenced(fence: Fence) -> list[Any]:
    return [J.c.id == fence.job_id, J.c.worker_id == fence.worker_id, J.c.attempt == fence.attempt,
            J.c.status == "running"]


def _lost(fence: Fence) -> JobLost:
    return JobLost(f"job {fence.job_id}: worker {fence.worker_id} no longer holds attempt {fence.attempt}")


class JobRepository:
    """Enqueue, claim, renew, complete, fail, cancel, release and reap jobs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- enqueue --------------------------------------------------------------------------
    def add(self, new: NewJob, tiles: Sequence[NewJob] = (), dedupe: bool = True) -> tuple[JobRecord, bool]:
        """Enqueue a job (and its tile jobs); (job, created). With `dedupe`, an active job with the
        same cache key is returned instead (PostgreSQL: under an advisory lock on the key)."""
        with self.db.write() as conn:
            now = db_now_ms(conn)
            if dedupe and new.cache_key:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(new.cache_key[:15], 16)})
                found = conn.execute(select(J).where(J.c.cache_key == new.cache_key, J.c.status.in_(ACTIVE))
                                     .order_by(J.c.id).limit(1)).first()
                if found is not None:
                    return JobRecord(**found._mapping), False
            where = f"queue {new.queue}, priority {new.priority}" + (f", {len(tiles)} tiles" if tiles else "")
            job_id = _insert_job(conn, new, now, "waiting" if tiles else "queued", None, where)
            if tiles:  # one multi-row insert for the tiles and one for their events
                conn.execute(J.insert(), [_job_values(tile, now, "queued", job_id) for tile in tiles])
                tile_ids = conn.execute(select(J.c.id).where(J.c.parent_id == job_id).order_by(J.c.id)).scalars().all()
                conn.execute(E.insert(), [
                    {"job_id": tid, "at": now, "kind": "enqueued", "worker_id": None,
                     "message": f"tile {i + 1} of {len(tiles)} of job {job_id}"} for i, tid in enumerate(tile_ids)])
            return _job(conn, job_id), True

    # -- claim and lease ------------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str], resources: Sequence[str],
              lease_s: float) -> JobRecord | None:
        """Claim the most urgent runnable job these queues and resources allow, or None."""
        with self.db.write() as conn:
            now = _now(conn)  # in SQL: one round trip less on the hot path
            pick = (select(J.c.id).where(J.c.status == "queued", J.c.queue.in_(list(queues)),
                                         J.c.resource.in_(list(resources)), J.c.run_after <= now)
                    .order_by(J.c.priority.desc(), J.c.id).limit(1))
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            row = conn.execute(update(J).where(J.c.id == pick.scalar_subquery(), J.c.status == "queued").values(
                status="running", worker_id=worker_id, lease_expires=now + int(lease_s * 1000), heartbeat=now,
                attempt=J.c.attempt + 1, started_at=now, progress=0.0, progress_message=None).returning(*J.c)).first()
            if row is None:
                return None
            _event(conn, row.id, row.started_at, "claimed", worker_id, f"attempt {row.attempt} of {row.max_attempts}")
            return JobRecord(**row._mapping)

    def heartbeat(self, worker_id: str, fence: Fence | None, lease_s: float, progress: float = 0.0,
                  message: str | None = None) -> Heartbeat:
        """Renew the worker's heartbeat and, when it runs a job, the job's lease and progress."""
        with self.db.write() as conn:
            now = db_now_ms(conn)
            reply = Heartbeat()
            if fence is not None:
                row = conn.execute(update(J).where(*_fenced(fence)).values(
                    lease_expires=now + int(lease_s * 1000), heartbeat=now, progress=float(progress),
                    progress_message=message).returning(J.c.cancel_requested)).first()
                if row is not None:
                    reply = Heartbeat(cancel_requested=bool(row[0]))
                else:
                    own = conn.execute(select(J.c.status).where(
                        J.c.id == fence.job_id, J.c.worker_id == fence.worker_id, J.c.attempt == fence.attempt,
                        J.c.status.in_(FINAL))).first()
                    reply = Heartbeat(finished=True) if own is not None else Heartbeat(lost=True)
            busy = fence is not None and not reply.lost
            conn.execute(update(W).where(W.c.id == worker_id).values(
                heartbeat=now, status="busy" if busy else "idle", current_job=fence.job_id if fence and busy else None))
            return reply

    # -- finishing (all fenced) -------------------------------------------------------------------
    def complete_with_result(
        self, fence: Fence, new: NewResult, produced: Sequence[tuple[NewRun, NewCheckpoint]] = (),
        replace: bool = False,
    ) -> tuple[ResultRecord, bool]:
        """`ResultRepository.add` and the job's success in one transaction, only while `fence` holds."""
        r = m.ResultRow.__table__
        with self.db.write() as conn:
            result_id, created = insert_result(conn, new, produced, replace)
            _finish(conn, fence, "succeeded", result_id=result_id)
            return result_records(conn, [r.c.id == result_id])[0], created

    def complete(self, fence: Fence, result_id: int) -> None:
        """Mark the job succeeded with an existing result (found in the cache)."""
        with self.db.write() as conn:
            _finish(conn, fence, "succeeded", result_id=result_id, message="result was cached")

    def fail(self, fence: Fence, error_type: str, message: str, traceback: str | None = None,
             retry: bool = True, backoff_s: float = 1.0) -> JobRecord:
        """Record an attempt's failure: requeued after ``backoff_s * 2**(attempt-1)`` while
        attempts remain (and `retry`), else failed with the error."""
        error = {"error_type": error_type[:200], "error_message": message, "error_traceback": traceback}
        with self.db.write() as conn:
            now = db_now_ms(conn)
            row = conn.execute(select(J.c.attempt, J.c.max_attempts).where(*_fenced(fence))).first()
            if row is None:
                raise _lost(fence)
            if retry and row.attempt < row.max_attempts:
                delay = backoff_s * 2 ** (row.attempt - 1)
                done = conn.execute(update(J).where(*_fenced(fence)).values(
                    status="queued", run_after=now + int(delay * 1000), worker_id=None, lease_expires=None,
                    progress=0.0, progress_message=None, **error)).rowcount
                if done != 1:
                    raise _lost(fence)
                _event(conn, fence.job_id, now, "retried", fence.worker_id,
                       f"attempt {row.attempt} failed ({error_type}: {_short(message)}); retry in {delay:.3g} s")
            else:
                _finish(conn, fence, "failed", error=error, message=f"{error_type}: {_short(message)}")
            return _job(conn, fence.job_id)

    def finish_cancelled(self, fence: Fence, message: str = "cancelled while running") -> JobRecord:
        with self.db.write() as conn:
            _finish(conn, fence, "cancelled", message=message)
            return _job(conn, fence.job_id)

    def release(self, fence: Fence, message: str = "released by its worker") -> None:
        """Put a running job back in the queue without counting the attempt (worker shutdown)."""
        with self.db.write() as conn:
            now = db_now_ms(conn)
            done = conn.execute(update(J).where(*_fenced(fence)).values(
                status="queued", attempt=J.c.attempt - 1, run_after=now, worker_id=None, lease_expires=None,
                progress=0.0, progress_message=None)).rowcount
            if done != 1:
                raise _lost(fence)
            _event(conn, fence.job_id, now, "released", fence.worker_id, message)

    # -- reaper -----------------------------------------------------------------------------------
    def reap_expired(self, limit: int = 100) -> list[int]:
        """Requeue running jobs whose lease expired (the attempt counts; none left: failed).
        Returns the reaped ids. A cheap read first, so idle workers do not take the write lock."""
        return [job.id for job in self.reap(limit)]

    def reap(self, limit: int = 100) -> builtins.list[JobRecord]:
        """`reap_expired`, returning each reaped job as this transaction left it (queued, failed or
        cancelled): the reaper commits the final state of a job out of attempts, so it notifies."""
        with self.db.read() as conn:
            expired = conn.execute(select(J.c.id).where(J.c.status == "running", J.c.lease_expires < _now(conn))
                                   .limit(1)).first()
        if expired is None:
            return []
        with self.db.write() as conn:
            now = db_now_ms(conn)
            pick = (select(J.c.id, J.c.attempt, J.c.max_attempts, J.c.worker_id, J.c.cancel_requested)
                    .where(J.c.status == "running", J.c.lease_expires < now).order_by(J.c.id).limit(limit))
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            reaped = []
            for row in conn.execute(pick).all():
                fence = Fence(row.id, row.worker_id or "", row.attempt)
                message = f"lease of {row.worker_id} expired (attempt {row.attempt} of {row.max_attempts})"
                _event(conn, row.id, now, "lease_expired", row.worker_id, message)
                if row.cancel_requested:
                    _finish(conn, fence, "cancelled", message="cancelled (its worker was lost)")
                elif row.attempt < row.max_attempts:
                    conn.execute(update(J).where(*_fenced(fence)).values(
                        status="queued", run_after=now, worker_id=None, lease_expires=None, progress=0.0,
                        progress_message=None))
                else:
                    error = {"error_type": "LeaseExpired", "error_message": message, "error_traceback": None}
                    _finish(conn, fence, "failed", error=error, message="lease expired")
                reaped.append(_job(conn, row.id))
            return reaped

    # -- cancel and retry (by hand) ------------------------------------------------------------
    def cancel(self, job_id: int) -> JobRecord:
        """Cancel a job: at once when queued or waiting (with its tiles), cooperatively when running."""
        return self.cancel_now(job_id)[0]

    def cancel_now(self, job_id: int) -> tuple[JobRecord, bool]:
        """`cancel`, and whether this transaction committed the job's final state (queued or waiting)."""
        with self.db.write() as conn:
            now = db_now_ms(conn)
            if conn.dialect.name == "postgresql":  # children first: the order completions lock in
                conn.execute(select(J.c.id).where(J.c.parent_id == job_id).order_by(J.c.id).with_for_update())
            job = _job(conn, job_id)
            if job.status in ("queued", "waiting"):
                conn.execute(update(J).where(J.c.id == job_id).values(status="cancelled", finished_at=now))
                _event(conn, job_id, now, "cancelled", None, f"cancelled while {job.status}")
                _cancel_children(conn, job_id, now, f"its parent job {job_id} was cancelled")
                if job.parent_id is not None:
                    _tile_finished(conn, job.parent_id, job_id, "cancelled", now)
                return _job(conn, job_id), True
            if job.status == "running" and not job.cancel_requested:
                conn.execute(update(J).where(J.c.id == job_id).values(cancel_requested=True))
                _event(conn, job_id, now, "cancel_requested", None, f"worker {job.worker_id} will stop it")
            return _job(conn, job_id), False

    def retry(self, job_id: int) -> JobRecord:
        """Requeue a failed or cancelled job with fresh attempts (a fan-out parent: its lost tiles too)."""
        with self.db.write() as conn:
            now = db_now_ms(conn)
            job = _job(conn, job_id)
            if job.status not in ("failed", "cancelled"):
                raise BadInput(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
            fresh = {**_FRESH, "run_after": now}
            tiles = conn.execute(update(J).where(J.c.parent_id == job_id, J.c.status.in_(("failed", "cancelled")))
                                 .values(status="queued", **fresh).returning(J.c.id)).scalars().all()
            for tile in tiles:
                _event(conn, tile, now, "retried", None, "retried by hand (with its parent)")
            waiting = conn.execute(select(func.count()).where(J.c.parent_id == job_id, J.c.status != "succeeded"))
            status = "waiting" if waiting.scalar_one() else "queued"
            conn.execute(update(J).where(J.c.id == job_id).values(status=status, **fresh))
            _event(conn, job_id, now, "retried", None, "retried by hand")
            return _job(conn, job_id)

    # -- reading ------------------------------------------------------------------------------------
    def get(self, job_id: int) -> JobRecord:
        """One job; `NotFound` otherwise."""
        with self.db.read() as conn:
            return _job(conn, job_id)

    def list(self, status: Sequence[str] | str | None = None, queue: str | None = None,
             limit: int | None = None, parent_id: int | None = None) -> list[JobRecord]:
        """Jobs oldest first (with `limit`: the newest `limit` of them)."""
        q = select(J).order_by(J.c.id.desc())
        if status:
            q = q.where(J.c.status.in_([status] if isinstance(status, str) else list(status)))
        if queue is not None:
            q = q.where(J.c.queue == queue)
        if parent_id is not None:
            q = q.where(J.c.parent_id == parent_id)
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as conn:
            return [JobRecord(**row._mapping) for row in reversed(conn.execute(q).all())]

    def list_events(self, job_id: int) -> builtins.list[JobEventRecord]:
        with self.db.read() as conn:
            _job(conn, job_id)
            rows = conn.execute(select(E).where(E.c.job_id == job_id).order_by(E.c.id)).all()
        return [JobEventRecord(**row._mapping) for row in rows]


class WorkerRepository:
    """Registered workers: register, set status, list (heartbeats go through `JobRepository.heartbeat`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, worker_id: str, host: str, pid: int, device: str,
                 queues: Sequence[str]) -> WorkerRecord:
        with self.db.write() as conn:
            now = db_now_ms(conn)
            conn.execute(W.insert().values(id=worker_id, host=host, pid=pid, device=device, queues=list(queues),
                                           status="idle", current_job=None, started_at=now, heartbeat=now))
            return WorkerRecord(**conn.execute(select(W).where(W.c.id == worker_id)).one()._mapping)

    def set_status(self, worker_id: str, status: str) -> None:
        with self.db.write() as conn:
            now = db_now_ms(conn)
            conn.execute(update(W).where(W.c.id == worker_id).values(status=status, current_job=None, heartbeat=now))

    def list(self) -> list[WorkerRecord]:
        with self.db.read() as conn:
            return [WorkerRecord(**row._mapping) for row in conn.execute(select(W).order_by(W.c.started_at, W.c.id))]


# -- in the caller's transaction ----------------------------------------------------------------


def _job_values(new: NewJob, now: int, status: str, parent: int | None) -> dict[str, Any]:
    return dict(analysis=new.analysis, payload=new.payload, cache_key=new.cache_key, queue=new.queue,
                resource=new.resource, priority=new.priority, status=status, attempt=0, max_attempts=new.max_attempts,
                run_after=now, time_limit_s=new.time_limit_s, cancel_requested=False, progress=0.0, parent_id=parent,
                created_at=now)


def _insert_job(conn: Connection, new: NewJob, now: int, status: str, parent: int | None,
                message: str) -> int:
    job_id = conn.execute(J.insert().values(**_job_values(new, now, status, parent)).returning(J.c.id)).scalar_one()
    _event(conn, job_id, now, "enqueued", None, message)
    return int(job_id)


def _finish(conn: Connection, fence: Fence, status: str, *, result_id: int | None = None,
            error: dict[str, Any] | None = None, message: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": _now(conn), "lease_expires": None, **(error or {})}
    if status == "succeeded":
        values.update(result_id=result_id, progress=1.0, progress_message="done")
    row = conn.execute(update(J).where(*_fenced(fence)).values(**values)
                       .returning(J.c.parent_id, J.c.finished_at)).first()
    if row is None:
        again = conn.execute(select(J.c.status, J.c.result_id, J.c.worker_id, J.c.attempt)
                             .where(J.c.id == fence.job_id)).first()
        if status == "succeeded" and again is not None and tuple(again) == (
                "succeeded", result_id, fence.worker_id, fence.attempt):
            return  # this very commit already happened (a retry after a lost acknowledgement)
        raise _lost(fence)
    _event(conn, fence.job_id, row.finished_at, status, fence.worker_id, message)
    if row.parent_id is not None:
        _tile_finished(conn, row.parent_id, fence.job_id, status, row.finished_at)


def _tile_finished(conn: Connection, parent_id: int, child_id: int, status: str, now: int) -> None:
    """A tile reached a final state: requeue its parent after the last success, fail it on a loss."""
    lock = select(J.c.status).where(J.c.id == parent_id)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()  # serializes the siblings' completions (see the module docstring)
    if conn.execute(lock).scalar_one_or_none() != "waiting":
        return
    if status == "succeeded":
        left = conn.execute(select(func.count()).where(J.c.parent_id == parent_id, J.c.status != "succeeded"))
        if left.scalar_one() == 0:
            conn.execute(update(J).where(J.c.id == parent_id).values(status="queued", run_after=now))
            _event(conn, parent_id, now, "tiles_done", None, "every tile succeeded; queued to merge")
        return
    message = f"tile job {child_id} {status}"
    conn.execute(update(J).where(J.c.id == parent_id).values(
        status="failed", finished_at=now, error_type="TileFailed", error_message=message))
    _event(conn, parent_id, now, "failed", None, message)
    _cancel_children(conn, parent_id, now, f"a sibling tile {status}")


def _cancel_children(conn: Connection, parent_id: int, now: int, reason: str) -> None:
    queued = conn.execute(update(J).where(J.c.parent_id == parent_id, J.c.status == "queued")
                          .values(status="cancelled", finished_at=now).returning(J.c.id)).scalars().all()
    for child in queued:
        _event(conn, child, now, "cancelled", None, reason)
    conn.execute(update(J).where(J.c.parent_id == parent_id, J.c.status == "running")
                 .values(cancel_requested=True))


def _job(conn: Connection, job_id: int) -> JobRecord:
    row = conn.execute(select(J).where(J.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"job {job_id} not found; see `lsdb jobs list`")
    return JobRecord(**row._mapping)


def _now(conn: Connection) -> Any:
    """The database's clock in epoch milliseconds, as SQL (`engine.db_now_ms` without the round trip)."""
    if conn.dialect.name == "postgresql":
        return literal_column("CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
    return literal_column("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")


def _event(conn: Connection, job_id: int, now: int, kind: str, worker_id: str | None, message: str | None) -> None:
    conn.execute(E.insert().values(job_id=job_id, at=now, kind=kind, worker_id=worker_id, message=message))


def _short(message: str, limit: int = 200) -> str:
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
