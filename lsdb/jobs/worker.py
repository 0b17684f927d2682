"""`lsdb worker`: claim jobs, run each in a child process, keep the lease, settle the outcome.

The loop: reap expired leases (every worker does; a cheap read when nothing expired), claim
one job (one statement), hand it to the executor, and wait for the outcome while a heartbeat
thread renews the lease, the worker's own heartbeat and the job's progress, and reads its
cancel flag. The outcome is settled with fenced writes: the executor has already committed a
success; a failure is retried with exponential backoff until ``max_attempts``; a crash of the
child, a time limit, a lost lease and a cancellation each end the attempt without taking the
worker down. SIGTERM/SIGINT stop claiming; the current job gets ``grace_s`` to finish and is
then released (requeued without counting the attempt); a second signal releases it at once.
Database errors that a reconnect may cure are retried, so a restarted server costs a pause.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsdb.catalog.jobs import FINAL, Fence
from lsdb.devices import resolve_device
from lsdb.errors import JobLost
from lsdb.jobs.executor import ChildExecutor, ExecutorDied, InlineExecutor
from lsdb.jobs.submit import resources_for
from lsdb.jobs.transient import is_transient, retry_transient

if TYPE_CHECKING:
    from lsdb.catalog import CatalogDB
    from lsdb.catalog.jobs import JobRecord

log = logging.getLogger("lsdb.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs (the `lsdb worker` flags)."""

    device: str = "auto"
    queues: tuple[str, ...] = ("default",)
    max_jobs: int | None = None
    once: bool = False
    idle_exit_s: float | None = None
    threads: int | None = None
    lease_s: float = 30.0
    poll_s: float = 1.0
    backoff_s: float = 1.0
    grace_s: float = 5.0
    cancel_grace_s: float = 10.0
    inprocess: bool = False


class Worker:
    """One worker process serving one device."""

    def __init__(self, catalog: CatalogDB, options: WorkerOptions) -> None:
        self.catalog = catalog
        self.options = options
        self.device = resolve_device(options.device)
        self.resources = resources_for(self.device)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.executor: Any = (InlineExecutor(catalog) if options.inprocess else
                              ChildExecutor(catalog.settings.database_url, catalog.settings.store_root,
                                            options.threads))
        self.jobs_done = 0
        self._lock = threading.Lock()
        self._fence: Fence | None = None
        self._progress: tuple[float, str | None] = (0.0, None)
        self._stop = threading.Event()
        self._hard_stop = threading.Event()
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._wake = threading.Event()

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve jobs until stopped, `once`, `max_jobs` or `idle_exit_s`; returns the jobs run."""
        opts = self.options
        self._db(lambda: self.catalog.workers.register(self.id, socket.gethostname(), os.getpid(), self.device,
                                                      opts.queues))
        log.info("worker %s on %s serving queues %s", self.id, self.device, ", ".join(opts.queues))
        self._install_signals()
        beat = threading.Thread(target=self._heartbeat_loop, daemon=True, name="heartbeat")
        beat.start()
        last_reap, idle_since = 0.0, time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - last_reap >= min(1.0, opts.lease_s / 4):
                    last_reap = time.monotonic()
                    for reaped in self._db(self.catalog.jobs.reap, default=[]):
                        if reaped.status in FINAL:  # this worker's reaper committed it: it notifies
                            self.executor.finished(reaped)
                if opts.max_jobs is not None and self.jobs_done >= opts.max_jobs:
                    break
                self.executor.ensure_ready()
                job = self._db(lambda: self.catalog.jobs.claim(self.id, opts.queues, self.resources, opts.lease_s))
                if job is None:
                    idle = time.monotonic() - idle_since
                    if opts.once or (opts.idle_exit_s is not None and idle >= opts.idle_exit_s):
                        break
                    self._stop.wait(opts.poll_s)
                    continue
                self._run_job(job)
                self.jobs_done += 1
                idle_since = time.monotonic()
                if opts.once:
                    break
        finally:
            self._stop.set()
            self._wake.set()
            beat.join(timeout=5)
            self.executor.close()
            self._db(lambda: self.catalog.workers.set_status(self.id, "stopped"))
            log.info("worker %s stopped after %d job(s)", self.id, self.jobs_done)
        return self.jobs_done

    def _run_job(self, job: JobRecord) -> None:
        fence = Fence(job.id, self.id, job.attempt)
        with self._lock:
            self._fence, self._progress = fence, (0.0, "started")
        self._cancel.clear()
        self._lost.clear()
        log.info("job %d (%s) attempt %d started", job.id, job.analysis, job.attempt)
        device = "cpu" if job.resource == "cpu" else self.device
        started = time.monotonic()
        outcome = self._follow(job, fence, device, started)
        with self._lock:
            self._fence = None
        self._settle(job, fence, outcome, time.monotonic() - started)

    def _follow(self, job: JobRecord, fence: Fence, device: str, started: float) -> dict[str, Any]:
        """Wait for the executor's outcome, enforcing the time limit, cancellation, lease and shutdown."""
        try:
            self.executor.start(job, fence, device)
        except ExecutorDied as exc:
            return {"outcome": "crashed", "message": str(exc)}
        cancel_sent: float | None = None
        stop_seen: float | None = None
        while True:
            msg = self.executor.poll(0.1)
            if msg is not None:
                if msg.get("type") == "progress":
                    with self._lock:
                        self._progress = (float(msg["fraction"]), msg.get("message"))
                    continue
                if msg.get("type") == "done":
                    return msg
                if msg.get("type") == "exit":
                    self.executor.kill()
                    return {"outcome": "crashed", "message": _exit_reason(msg.get("code"))}
            now = time.monotonic()
            if self._lost.is_set():
                self.executor.kill()
                return {"outcome": "lost", "message": "the lease was lost"}
            if job.time_limit_s is not None and now - started > job.time_limit_s:
                self.executor.kill()
                return {"outcome": "time_limit"}
            if self._cancel.is_set():
                if cancel_sent is None:
                    cancel_sent = now
                    self.executor.cancel(job.id)
                elif now - cancel_sent > self.options.cancel_grace_s:
                    self.executor.kill()
                    return {"outcome": "cancelled"}
            if self._stop.is_set():
                stop_seen = stop_seen or now
                if self._hard_stop.is_set() or now - stop_seen >= self.options.grace_s:
                    self.executor.kill()
                    return {"outcome": "released"}

    def _settle(self, job: JobRecord, fence: Fence, outcome: dict[str, Any], seconds: float) -> None:
        """Record how the attempt ended (the executor already committed a success)."""
        kind = outcome.get("outcome")
        jobs, backoff = self.catalog.jobs, self.options.backoff_s
        actions = {
            "failed": lambda: jobs.fail(fence, outcome["error_type"], outcome["message"], outcome.get("traceback"),
                                        retry=bool(outcome.get("retryable", True)), backoff_s=backoff),
            "crashed": lambda: jobs.fail(fence, "ExecutorDied", outcome.get("message", "the executor died"),
                                         retry=True, backoff_s=backoff),
            "time_limit": lambda: jobs.fail(fence, "TimeLimitExceeded",
                                            f"time limit exceeded ({job.time_limit_s:g} s)", retry=False),
            "cancelled": lambda: jobs.finish_cancelled(fence),  # each returns the committed record
            "released": lambda: jobs.release(fence, f"released by {self.id} on shutdown"),
        }
        log.info("job %d attempt %d: %s after %.2f s%s", job.id, fence.attempt, kind, seconds,
                 f" ({outcome.get('error_type')}: {outcome.get('message')})" if kind == "failed" else "")
        if kind == "failed" and "OutOfMemory" in str(outcome.get("error_type")):
            self.executor.kill()  # a fresh process for the next job: a clean CUDA context
        committed = None
        if kind in actions:
            try:
                committed = self._db(actions[kind], raise_lost=True)
            except JobLost as exc:
                log.warning("job %d: %s; its outcome was not recorded", job.id, exc)
        if committed is not None and committed.status in FINAL:
            # this worker committed the job's final state: `job_finished` once, with that record, in
            # the job process (where the plugins are loaded). A success was committed, and its
            # listeners called, by the job process itself; a retried attempt notifies nobody.
            self.executor.finished(committed)

    # -- heartbeat ------------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        """Renew the lease every lease/3 (10 s at most) and write a changed job or progress at most twice a second."""
        interval = min(self.options.lease_s / 3, 10.0)
        last, sent = 0.0, None
        while not self._wake.wait(min(interval, 0.5)):
            with self._lock:
                fence, progress = self._fence, self._progress
            now = time.monotonic()
            if now - last < interval and (fence, progress if fence else None) == sent:
                continue  # nothing new: the job, its progress and the lease are as last written
            try:
                reply = self.catalog.jobs.heartbeat(self.id, fence, self.options.lease_s, progress[0] if fence else 0.0,
                                               progress[1] if fence else None)
            except Exception as exc:  # noqa: BLE001 - keep beating; the reaper decides what a long outage costs
                log.warning("heartbeat failed (%s); retrying", _one_line(exc))
                continue
            last, sent = now, (fence, progress if fence else None)
            with self._lock:
                current = self._fence == fence and fence is not None
            if current and reply.finished:
                continue  # the job process committed this attempt's final state and runs its listeners
            if current and reply.lost:
                log.warning("job %d: lease lost; stopping it", fence.job_id if fence else -1)
                self._lost.set()
            elif current and reply.cancel_requested:
                self._cancel.set()

    # -- plumbing -------------------------------------------------------------------------------------
    def _db(self, fn: Any, default: Any = None, raise_lost: bool = False) -> Any:
        """Run a catalog call, retrying transient errors; a persistent outage is logged, not fatal."""
        try:
            return retry_transient(fn, on_retry=lambda e: log.warning("database unavailable (%s); retrying",
                                                                      _one_line(e)))
        except JobLost:
            if raise_lost:
                raise
            return default
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.error("database still unavailable: %s", _one_line(exc))
            return default

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: Any) -> None:
            if self._stop.is_set():
                self._hard_stop.set()
            log.info("signal %d: %s", signum, "releasing the current job" if self._hard_stop.is_set()
                     else f"finishing (up to {self.options.grace_s:g} s), then stopping")
            self._stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the job's process was killed by {name}"
    return f"the job's process exited with code {code}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
