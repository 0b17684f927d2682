"""Running one claimed job: in a child process (``python -m lsdb.jobs.executor``) or in-process.

Who does what: the worker (the parent) claims the job, renews its lease, enforces the time
limit and cancellation, and records failures. The executor prepares the request, computes it,
publishes the artifact and commits the result *under the job's fence* (`FencedCommit`): the
result rows and the job's ``succeeded`` state are one transaction that rolls back with
`JobLost` if the lease is no longer this attempt's. The child therefore never holds a job the
worker does not, and a crash, a CUDA OOM or a ``kill -9`` of the child costs one attempt,
never the worker.

Listener semantics (docs/workers.md, "Listeners"): `result_stored` and `job_finished` run once
per job's final state, after the transaction that committed it, in the process that committed
it (the child for a success; for a final state the worker commits, the worker's child on its
behalf, with the record the worker committed: a notice is never re-read or replayed for an
attempt that did not end the job). A listener's failure is reported and never undoes the commit.

The child is started once and reused for the next jobs (importing torch and the plugins
takes seconds); it is replaced after it dies or is killed. It exits when its parent does
(``PR_SET_PDEATHSIG`` on Linux, and EOF on its stdin). Protocol, one JSON object per line:

* parent -> child (stdin): ``{"op": "run", "job": {...}, "fence": [id, worker, attempt],
  "device": "cpu"}``, ``{"op": "cancel", "job": id}``, ``{"op": "finished", "job": {record}}`` (call
  the `job_finished` hook with the final state the *worker* committed — a failure, time limit or
  cancellation: the child has the plugins loaded, the worker does not need them);
* child -> parent (the child's original stdout; whatever the analysis prints goes to
  stderr): ``{"type": "ready"}``, ``{"type": "progress", "fraction": f, "message": m}``,
  ``{"type": "done", "outcome": "succeeded" | "failed" | "cancelled" | "lost", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lsdb.allocator import child_env
from lsdb.catalog.jobs import Fence
from lsdb.errors import BadInput, JobLost
from lsdb.jobs.transient import retry_transient

if TYPE_CHECKING:
    from lsdb.analyses.contract import AnalysisOutput
    from lsdb.analyses.runner import Prepared
    from lsdb.catalog import CatalogDB, NewCheckpoint, NewResult, NewRun, ResultRecord
    from lsdb.catalog.jobs import JobRecord, JobRepository
    from lsdb.registry import Registries

#: HDF5 attributes the runner writes itself; what is left of a tile's attributes goes to `merge`.
RUNNER_ATTRS = {"analysis", "analysis_version", "params", "inputs", "input_checkpoints", "dataset", "model",
                "seed", "cache_key", "scalars"}


class FencedCommit:
    """`store_output`'s commit for a job (a `lsdb.analyses.runner.CommitResult`): the result rows and
    the job's success in one transaction, only while `fence` holds (else `JobLost`); transient
    database errors are retried (a retry after a lost acknowledgement is recognized by the queue)."""

    def __init__(self, jobs: JobRepository, fence: Fence) -> None:
        self.jobs = jobs
        self.fence = fence

    def __call__(
        self, new: NewResult, produced: Sequence[tuple[NewRun, NewCheckpoint]], replace: bool
    ) -> tuple[ResultRecord, bool]:
        return retry_transient(lambda: self.jobs.complete_with_result(self.fence, new, produced, replace))


def execute_job(
    catalog: CatalogDB,
    job: dict[str, Any],
    fence: Fence,
    device: str,
    progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    registries: Registries | None = None,
) -> dict[str, Any]:
    """Run one job to its outcome (a JSON-able dict); commits the success, never a failure."""
    from lsdb.analyses.context import Cancelled
    from lsdb.analyses.runner import AnalysisRequest, compute, prepare, store_output

    payload = job["payload"]
    try:
        request = AnalysisRequest.from_json(payload["request"])
        prepared = retry_transient(lambda: prepare(catalog, request, registries))  # a dropped connection: no attempt
        force = bool(payload.get("force"))
        if payload.get("fanout"):
            output, wall, dev = merge_tiles(catalog, prepared, fence.job_id)
        else:
            cached = None if force else retry_transient(lambda: catalog.results.find(prepared.cache_key))
            if cached is not None:
                retry_transient(lambda: catalog.jobs.complete(fence, cached.id))
                _notify_own_success(catalog, fence, registries)
                return {"outcome": "succeeded", "result_id": cached.id, "computed": False}
            output, wall, dev = compute(catalog, prepared, device=device, progress=progress,
                                        should_cancel=should_cancel)
        record, created = store_output(catalog, prepared, output, wall_seconds=wall, device=str(dev),
                                       job_id=fence.job_id, replace=force,
                                       commit=FencedCommit(catalog.jobs, fence))
        _notify_own_success(catalog, fence, registries)  # after `result_stored`: both after the commit
        return {"outcome": "succeeded", "result_id": record.id, "computed": created}
    except Cancelled:
        return {"outcome": "cancelled"}
    except JobLost as exc:
        return {"outcome": "lost", "message": str(exc)}
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - the job failed, the executor carries on
        # SystemExit/KeyboardInterrupt raised by a factory or an analysis (the job process ignores
        # SIGINT, so a real Ctrl-C never reaches here) fail the job like any other error
        message = str(exc) or repr(exc)
        if not isinstance(exc, Exception):
            message = f"{type(exc).__name__}({str(exc)!r}) raised inside the job; treated as an error"
        return {"outcome": "failed", "error_type": type(exc).__name__, "message": message,
                "traceback": traceback.format_exc(), "retryable": not isinstance(exc, BadInput)}


def merge_tiles(catalog: CatalogDB, prepared: Prepared, job_id: int) -> tuple[AnalysisOutput, float, str]:
    """The parent's output from its tiles' results, in tile order; (output, summed wall seconds, devices)."""
    from lsdb.analyses.contract import AnalysisOutput, check_memory
    from lsdb.analyses.runner import load_view

    merge = prepared.spec.merge
    if merge is None:
        raise BadInput(f"analysis '{prepared.spec.name}' declares no merge; job {job_id} cannot be assembled")
    check_memory(prepared.spec, prepared.params)  # the whole grid, before loading any tile
    outputs, wall, devices = [], 0.0, set()
    for tile in catalog.jobs.list(parent_id=job_id):
        if tile.status != "succeeded" or tile.result_id is None:
            raise RuntimeError(f"tile job {tile.id} is {tile.status}, not succeeded")
        result = catalog.results.get(tile.result_id)
        view = load_view(catalog, result, verify=True)
        attrs = {k: v for k, v in view.attrs.items() if k not in RUNNER_ATTRS}
        outputs.append(AnalysisOutput(arrays=dict(view.arrays), scalars=dict(view.scalars), attrs=attrs))
        wall += result.wall_seconds or 0.0
        devices.add(result.device or "")
    return merge(prepared.params, outputs), wall, ",".join(sorted(devices))


def _notify_own_success(catalog: CatalogDB, fence: Fence, registries: Registries | None) -> None:
    """`job_finished` for the success this process has just committed under `fence` (once: only
    the attempt whose fenced commit made the job final reaches here)."""
    from lsdb.plugins import resolve

    events = resolve(registries).events
    if not events.listens_for_jobs:
        return
    try:
        job = retry_transient(lambda: catalog.jobs.get(fence.job_id))
    except Exception as exc:  # noqa: BLE001 - an event hook must not undo or fail the committed job
        sys.stderr.write(f"warning: job_finished hook for job {fence.job_id} not called: {exc}\n")
        return
    if job.status == "succeeded" and (job.worker_id, job.attempt) == (fence.worker_id, fence.attempt):
        events.job_finished(job)


def notify_job_finished(record: dict[str, Any] | JobRecord, registries: Registries) -> None:
    """Call the `job_finished` hook with a final state the worker committed (its record, not a re-read)."""
    from lsdb.catalog.jobs import JobRecord

    job = record if isinstance(record, JobRecord) else JobRecord(**record)
    if registries.events.listens_for_jobs and job.status in ("succeeded", "failed", "cancelled"):
        registries.events.job_finished(job)


# -- the parent's side ----------------------------------------------------------------------------


class ExecutorDied(Exception):
    """The child process ended (or never became ready)."""


class ChildExecutor:
    """A reusable child process that runs one job at a time for a worker."""

    def __init__(self, database_url: str, store_root: Path, threads: int | None = None,
                 ready_timeout_s: float = 300.0) -> None:
        self.database_url = database_url
        self.store_root = store_root
        self.threads = threads
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._finished: list[dict[str, Any]] = []

    def ensure_ready(self) -> None:
        """Start a child unless a live one is waiting; block until it has loaded lsdb and the plugins."""
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [*child_command(), "--db", self.database_url, "--store", str(self.store_root),
               "--parent-pid", str(os.getpid())]
        env = child_env(dict(os.environ))  # lsdb.allocator: from the child's first allocation
        if self.threads:
            cmd += ["--threads", str(self.threads)]
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.messages = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc, self.messages), daemon=True, name="executor-pump").start()
        msg = self.poll(self.ready_timeout_s)
        if msg is None or msg.get("type") != "ready":
            self.kill()
            raise ExecutorDied(f"the executor process did not start: {msg}")
        for record in self._finished:  # final states this worker committed while no child was alive
            self._send({"op": "finished", "job": record})
        self._finished.clear()

    def start(self, job: JobRecord, fence: Fence, device: str) -> None:
        self._send({"op": "run", "job": {"id": job.id, "payload": job.payload}, "device": device,
                    "fence": [fence.job_id, fence.worker_id, fence.attempt]})

    def cancel(self, job_id: int) -> None:
        self._send({"op": "cancel", "job": job_id})

    def finished(self, job: JobRecord) -> None:
        """Have the child call the `job_finished` hook for a final state the worker committed (the
        child has the plugins loaded; the worker need not). Without a live child: the next one."""
        record = job.to_dict()
        try:
            self._send({"op": "finished", "job": record})
        except ExecutorDied:
            self._finished.append(record)

    def poll(self, timeout_s: float) -> dict[str, Any] | None:
        """The child's next message, ``{"type": "exit", "code": rc}`` once it has ended, or None."""
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _send(self, msg: dict[str, Any]) -> None:
        if self.proc is None or self.proc.stdin is None:
            raise ExecutorDied("no executor process")
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ExecutorDied(f"the executor process is gone: {exc}") from None


def child_command() -> list[str]:
    """``python -P -m lsdb.jobs.executor``: the job process never imports from the worker's current
    folder (a ``torch.py`` or ``lsdb.py`` there). ``-P`` (``sys.flags.safe_path``) needs Python 3.11;
    on 3.10 the first entry of ``sys.path`` (the current folder, as with ``-c``) is dropped before
    anything is imported."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", "lsdb.jobs.executor"]
    return [sys.executable, "-c", "import sys; del sys.path[0]; import runpy; "  # pragma: no cover - 3.10
            "runpy.run_module('lsdb.jobs.executor', run_name='__main__', alter_sys=True)"]


def _pump(proc: subprocess.Popen[bytes], out: queue.Queue[dict[str, Any]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            out.put(json.loads(line))
        except ValueError:
            sys.stderr.write(line.decode(errors="replace"))
    out.put({"type": "exit", "code": proc.wait()})


class InlineExecutor:
    """Runs jobs on a thread of the worker itself (``lsdb worker --inprocess``): no process start,
    for trivial jobs and tests. A crash takes the worker down and a time limit is only cooperative."""

    def __init__(self, catalog: CatalogDB, registries: Registries | None = None) -> None:
        self.catalog = catalog
        self.registries = registries
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_ready(self) -> None:
        from lsdb.plugins import resolve

        self.registries = resolve(self.registries)

    def start(self, job: JobRecord, fence: Fence, device: str) -> None:
        self._cancelled = cancelled = threading.Event()
        out = self.messages  # a job left behind by `kill` must not talk to the next one

        def run() -> None:
            def progress(fraction: float, message: str) -> None:
                out.put({"type": "progress", "fraction": fraction, "message": message})

            job_dict = {"id": job.id, "payload": job.payload}
            out.put({"type": "done", **execute_job(self.catalog, job_dict, fence, device, progress, cancelled.is_set,
                                                       self.registries)})

        self._thread = threading.Thread(target=run, daemon=True, name=f"job-{job.id}")
        self._thread.start()

    def cancel(self, job_id: int) -> None:
        self._cancelled.set()

    def finished(self, job: JobRecord) -> None:
        from lsdb.plugins import resolve

        notify_job_finished(job, resolve(self.registries))

    def poll(self, timeout_s: float) -> dict[str, Any] | None:
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def kill(self) -> None:
        """Ask the job to stop; one that does not within 10 s is left behind (its fence stops its commit)."""
        self._cancelled.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.messages = queue.Queue()

    def close(self) -> None:
        self.kill()


# -- the child's side ---------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """The child: load lsdb and the plugins, say ready, then run the jobs the parent sends."""
    parser = argparse.ArgumentParser(prog="python -m lsdb.jobs.executor")
    parser.add_argument("--db", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which decides
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(msg: dict[str, Any]) -> None:
        with lock:
            proto.write(json.dumps(msg) + "\n")

    import torch

    from lsdb.catalog import CatalogDB
    from lsdb.config import Settings
    from lsdb.plugins import load_registries

    if args.threads:
        torch.set_num_threads(args.threads)
    catalog = CatalogDB(Settings(args.db, Path(args.store)), check_schema=False)
    registries = load_registries()  # once per job process, handed to every job
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()
    orphaned = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg.get("op") == "cancel":
                cancelled.add(int(msg["job"]))
            else:
                inbox.put(msg)
        orphaned.set()  # EOF: the worker is gone or closing
        inbox.put(None)

    threading.Thread(target=read, daemon=True, name="executor-stdin").start()
    send({"type": "ready"})
    while (msg := inbox.get()) is not None:
        if msg.get("op") == "finished":
            notify_job_finished(msg["job"], registries)
            continue
        send({"type": "done", **_run_one(catalog, registries, msg, send,
                                         lambda i: i in cancelled or orphaned.is_set())})
    catalog.close()


def _run_one(catalog: CatalogDB, registries: Registries, msg: dict[str, Any], send: Callable[[dict[str, Any]], None],
             is_cancelled: Callable[[int], bool]) -> dict[str, Any]:
    """One job in the child, its progress sent at most five times a second."""
    job_id = int(msg["job"]["id"])
    last = 0.0

    def progress(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.2 or fraction >= 1.0:
            last = now
            send({"type": "progress", "fraction": fraction, "message": message})

    return execute_job(catalog, msg["job"], Fence(*msg["fence"]), msg["device"], progress,
                       lambda: is_cancelled(job_id), registries)


if __name__ == "__main__":
    main()
