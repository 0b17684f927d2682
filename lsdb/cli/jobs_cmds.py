"""`lsdb jobs [list|show|cancel|retry|logs]`, `lsdb worker`, `lsdb workers [start]`."""

from __future__ import annotations

import sys
from typing import Any

import typer

from lsdb.cli.render import Format, fmt_time, render, render_mapping
from lsdb.cli.state import state
from lsdb.errors import LsdbError

jobs_app = typer.Typer(help="Jobs: list, show, cancel, retry, and their event log.", invoke_without_command=True)
workers_app = typer.Typer(help="Workers: list them (default), or start one per device.", invoke_without_command=True)

JOB_COLUMNS = ["id", "analysis", "status", "queue", "priority", "attempt", "progress", "worker", "parent", "result",
               "created", "error"]


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.command("worker")(worker)
    app.add_typer(workers_app, name="workers")


# -- lsdb jobs ---------------------------------------------------------------------------------------------


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    status: list[str] = typer.Option(None, "--status", help="queued|running|waiting|succeeded|failed|cancelled"),
    queue: str = typer.Option(None, "--queue"),
    limit: int = typer.Option(50, "--limit", help="The newest N jobs."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List jobs (the newest --limit, oldest first)."""
    if ctx.invoked_subcommand is None:
        _list(ctx, status, queue, limit, format)


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    status: list[str] = typer.Option(None, "--status", help="queued|running|waiting|succeeded|failed|cancelled"),
    queue: str = typer.Option(None, "--queue"),
    limit: int = typer.Option(50, "--limit", help="The newest N jobs."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List jobs (the newest --limit, oldest first)."""
    _list(ctx, status, queue, limit, format)


def _list(ctx: typer.Context, status: list[str] | None, queue: str | None, limit: int, fmt: Format) -> None:
    records = state(ctx).catalog().jobs(status=status or None, queue=queue, limit=limit)
    if fmt is Format.json:
        render([r.to_dict() for r in records], fmt)
        return
    rows = [{"id": r.id, "analysis": r.analysis, "status": r.status + (" (cancelling)" if r.cancel_requested and
                                                                     r.status == "running" else ""),
             "queue": r.queue, "priority": r.priority, "attempt": f"{r.attempt}/{r.max_attempts}",
             "progress": f"{100 * r.progress:.0f}%", "worker": r.worker_id, "parent": r.parent_id,
             "result": r.result_id, "created": fmt_time(r.created_at),
             "error": f"{r.error_type}: {_first_line(r.error_message)}" if r.error_type else None}
            for r in records]
    render(rows, fmt, JOB_COLUMNS)


@jobs_app.command("show")
def jobs_show(ctx: typer.Context, job_id: int, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Every field of one job, its tiles, and the error's traceback."""
    catalog = state(ctx).catalog()
    job = catalog.job(job_id).record
    assert job is not None
    data = job.to_dict()
    data["tiles"] = [t.id for t in catalog.jobs(parent=job_id, limit=None)]
    if format is Format.json:
        render_mapping(data, format)
        return
    for key in ("run_after", "lease_expires", "heartbeat", "created_at", "started_at", "finished_at"):
        data[key] = fmt_time(data[key])
    traceback = data.pop("error_traceback")
    render_mapping(data, format)
    if traceback and format is Format.table:
        typer.echo("\ntraceback:\n" + traceback.rstrip())


@jobs_app.command("cancel")
def jobs_cancel(ctx: typer.Context, job_ids: list[int] = typer.Argument(..., help="Job ids."),
                format: Format = typer.Option(Format.table, "--format")) -> None:
    """Cancel jobs: queued ones at once, running ones when their analysis next reports progress."""
    catalog = state(ctx).catalog()
    rows = []
    for job_id in job_ids:
        job = catalog.cancel_job(job_id)
        note = "cancel requested" if job.status == "running" else job.status
        rows.append({"job": job.id, "status": job.status, "note": note})
    render(rows, format, ["job", "status", "note"])


@jobs_app.command("retry")
def jobs_retry(ctx: typer.Context, job_ids: list[int] = typer.Argument(..., help="Job ids."),
               format: Format = typer.Option(Format.table, "--format")) -> None:
    """Requeue failed or cancelled jobs with fresh attempts."""
    catalog = state(ctx).catalog()
    rows = [{"job": j.id, "status": j.status} for j in (catalog.retry_job(i) for i in job_ids)]
    render(rows, format, ["job", "status"])


@jobs_app.command("logs")
def jobs_logs(ctx: typer.Context, job_id: int, format: Format = typer.Option(Format.table, "--format")) -> None:
    """The job's events: enqueued, claimed, retried, lease_expired, released, succeeded, failed, cancelled."""
    events = state(ctx).catalog().job_events(job_id)
    rows = [e.to_dict() for e in events]
    if format is not Format.json:
        for row in rows:
            row["at"] = fmt_time(row["at"])
    render(rows, format, ["at", "kind", "worker_id", "message"])


# -- lsdb worker / workers -------------------------------------------------------------------------------


def worker(
    ctx: typer.Context,
    device: str = typer.Option("auto", "--device", help="cpu | cuda:N | auto"),
    queue: list[str] = typer.Option(None, "--queue", help="Queues to serve (repeatable; default: default)."),
    max_jobs: int = typer.Option(None, "--max-jobs", help="Exit after this many jobs."),
    once: bool = typer.Option(False, "--once", help="Run at most one job, then exit."),
    idle_exit: float = typer.Option(None, "--idle-exit", help="Exit after this many seconds without a job."),
    threads: int = typer.Option(None, "--threads", help="torch threads of the job process."),
    lease: float = typer.Option(30.0, "--lease", help="Lease seconds (renewed every lease/3)."),
    poll: float = typer.Option(1.0, "--poll", help="Seconds between claims while the queue is empty."),
    backoff: float = typer.Option(1.0, "--backoff", help="Retry delay base: base * 2^(attempt-1) seconds."),
    grace: float = typer.Option(5.0, "--grace", help="On SIGTERM: seconds the current job gets before release."),
    inprocess: bool = typer.Option(False, "--inprocess", help="Run jobs in this process (trivial jobs, tests)."),
) -> None:
    """Claim and run jobs on one device until stopped (SIGTERM/Ctrl-C finish or release the current job)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    state(ctx).catalog().serve(device=device, queues=tuple(queue or ("default",)), max_jobs=max_jobs, once=once,
                               idle_exit_s=idle_exit, threads=threads, lease_s=lease, poll_s=poll, backoff_s=backoff,
                               grace_s=grace, inprocess=inprocess)


@workers_app.callback()
def workers(
    ctx: typer.Context,
    lease: float = typer.Option(30.0, "--lease", help="Alive = heartbeat within 3 leases."),
    all_: bool = typer.Option(False, "--all", help="Include stopped workers."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Registered workers: alive, device, current job, last heartbeat."""
    if ctx.invoked_subcommand is not None:
        return
    rows = []
    for status in state(ctx).catalog().workers(lease):
        w, alive = status.worker, status.alive
        if not all_ and not alive and w.status == "stopped":
            continue
        row: dict[str, Any] = {**w.to_dict(), "alive": alive}
        if format is not Format.json:
            row.update(queues=",".join(map(str, w.queues)), heartbeat=fmt_time(w.heartbeat),
                       started_at=fmt_time(w.started_at))
        rows.append(row)
    render(rows, format, ["id", "host", "pid", "device", "queues", "status", "alive", "current_job", "heartbeat"])


@workers_app.command("start")
def workers_start(
    ctx: typer.Context,
    devices: str = typer.Option("all", "--devices", help="all (one per GPU) | cpu | N (CPU workers) | 0,1 (GPUs)"),
    queue: list[str] = typer.Option(None, "--queue", help="Queues every worker serves (repeatable)."),
    threads: int = typer.Option(None, "--threads"),
    lease: float = typer.Option(30.0, "--lease"),
    poll: float = typer.Option(1.0, "--poll"),
    inprocess: bool = typer.Option(False, "--inprocess", hidden=True),
    max_restarts: int = typer.Option(None, "--max-restarts", help="Give up on a worker after this many restarts."),
    backend: str = typer.Option("local", "--backend", help="local | ray"),
    address: str = typer.Option(None, "--address", help="Ray cluster address (--backend ray)."),
    num_workers: int = typer.Option(None, "--num-workers", help="Ray: how many workers."),
    gpus_per_worker: float = typer.Option(1.0, "--gpus-per-worker", help="Ray: GPUs per worker (0: CPU workers)."),
) -> None:
    """Start and supervise workers: one per visible GPU (or N CPU workers), restarted when they crash."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    args: list[str] = [f"--queue={q}" for q in queue or ()] + [f"--lease={lease}", f"--poll={poll}"]
    if threads:
        args.append(f"--threads={threads}")
    if inprocess:
        args.append("--inprocess")
    if backend not in ("local", "ray"):
        raise LsdbError(f"unknown backend '{backend}'; use local or ray")
    # opening the catalog creates or checks it once, before N workers race to
    state(ctx).catalog().start_workers(devices, args, max_restarts=max_restarts, backend=backend, address=address,
                                       num_workers=num_workers, gpus_per_worker=gpus_per_worker)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""
