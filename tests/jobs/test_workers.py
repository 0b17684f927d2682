"""Real worker processes on a real SQLite file and the real PostgreSQL server: every job runs
exactly once with many workers, a ``kill -9`` mid-job costs one attempt and no rows, failures,
crashes, time limits and cancellations end in the right state, and SIGTERM releases a job.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from lsdb.jobs.submit import enqueue
from lsdb.testing import open_db
from tests.conftest import Cli
from tests.jobs.conftest import Workers, probe, wait_until
from tests.jobs.plugin_jobs import executions

FAST = ("--poll", "0.05", "--backoff", "0.1")
N_WORKERS = int(os.environ.get("LSDB_TEST_QUEUE_WORKERS", "4"))
N_JOBS = int(os.environ.get("LSDB_TEST_QUEUE_JOBS", "200"))


def statuses(catalog: Any, ids: list[int]) -> dict[int, str]:
    return {j.id: j.status for j in catalog.jobs.list() if j.id in ids}


def count(catalog: Any, *status: str) -> int:
    """How many jobs are in these states (one cheap query: the tests poll it while workers run)."""
    from sqlalchemy import func, select

    from lsdb.catalog.jobs import J

    with catalog.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(J.c.status.in_(status))).scalar_one())


def all_final(catalog: Any, ids: list[int]) -> bool:
    return count(catalog, "queued", "running", "waiting") == 0 and len(statuses(catalog, ids)) == len(ids)


def test_many_workers_run_every_job_exactly_once(db_url: str, store_root: Path, tmp_path: Path,
                                                 workers: Workers) -> None:
    catalog = open_db(db_url, store_root)
    log = tmp_path / "executions.log"
    procs = [workers.start(db_url, "--device", "cpu", "--inprocess", "--lease", "5", *FAST)
             for _ in range(N_WORKERS)]
    ids = [enqueue(catalog, probe(f"t{i}", log)).job.id for i in range(N_JOBS)]  # while the workers start and run
    wait_until(lambda: count(catalog, "succeeded", "failed", "cancelled") == N_JOBS, timeout=150, interval=0.5,
               what="every job to finish")
    assert set(statuses(catalog, ids).values()) == {"succeeded"}
    assert executions(log) == {f"t{i}": 1 for i in range(N_JOBS)}
    results = catalog.results.list()
    assert len(results) == N_JOBS and {r.job_id for r in results} == set(ids)
    claimed_by = {j.worker_id for j in catalog.jobs.list()}
    assert workers.stop_all() == [0] * len(procs)
    assert len(claimed_by) >= 2, "the jobs should have been shared"
    assert {w.status for w in catalog.workers.list()} == {"stopped"}


def test_kill_9_of_a_worker_mid_job_costs_one_attempt_and_no_rows(db_url: str, store_root: Path, tmp_path: Path,
                                                                   workers: Workers) -> None:
    catalog = open_db(db_url, store_root)
    log = tmp_path / "executions.log"
    job = enqueue(catalog, probe("victim", log, sleep=5, steps=50)).job
    workers.start(db_url, "--device", "cpu", "--lease", "1.5", *FAST)  # runs the job in a child process
    running = wait_until(lambda: (j := catalog.jobs.get(job.id)).status == "running" and j.progress > 0 and j,
                         what="the job to run")
    survivor = workers.start(db_url, "--device", "cpu", "--lease", "1.5", "--inprocess", *FAST)
    victim = next(w for w in catalog.workers.list() if w.id == running.worker_id)
    child_pid = int(Path(log).read_text().split()[2])
    assert child_pid != victim.pid
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: catalog.jobs.get(job.id).status == "succeeded", timeout=60, what="the job to be rerun")
    final = catalog.jobs.get(job.id)
    assert final.attempt == 2 and final.worker_id != victim.id
    events = [e.kind for e in catalog.jobs.list_events(job.id)]
    assert events == ["enqueued", "claimed", "lease_expired", "claimed", "succeeded"]
    assert executions(log, "start") == {"victim": 2} and executions(log) == {"victim": 1}
    wait_until(lambda: not _alive(child_pid), timeout=10, what="the killed worker's job process to die with it")
    assert len(catalog.results.list()) == 1 and survivor.poll() is None
    cli = Cli(db_url, store_root)
    assert cli("gc", "--older-than", "0").exit_code == 0
    referenced = catalog.blobs.referenced_digests()
    assert set(catalog.objects.iter_digests()) == referenced and len(referenced) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_failures_crashes_time_limits_cancellations_and_shutdown(db_url: str, store_root: Path, tmp_path: Path,
                                                        workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = open_db(db_url, store_root)
    log = tmp_path / "executions.log"
    monkeypatch.setenv("LSDB_TEST_JOB_LOG", str(tmp_path / "hook.log"))
    raises = enqueue(catalog, probe("raises", log, fail="ValueError"), max_attempts=2, priority=9).job
    crashes = enqueue(catalog, probe("crashes", log, crash=True), max_attempts=1, priority=8).job
    slow = enqueue(catalog, probe("slow", log, sleep=60, steps=600), time_limit_s=1.5, priority=7).job
    cancelled_running = enqueue(catalog, probe("cancel-running", log, sleep=60, steps=600), priority=6).job
    cancelled_queued = enqueue(catalog, probe("cancel-queued", log), priority=5).job
    fine = enqueue(catalog, probe("fine", log), priority=4).job
    assert catalog.jobs.cancel(cancelled_queued.id).status == "cancelled"
    proc = workers.start(db_url, "--device", "cpu", "--lease", "3", "--grace", "0.5", *FAST)
    wait_until(lambda: catalog.jobs.get(cancelled_running.id).status == "running", timeout=90,
               what="the fourth job to start")
    catalog.jobs.cancel(cancelled_running.id)
    ids = [raises.id, crashes.id, slow.id, cancelled_running.id, cancelled_queued.id, fine.id]
    wait_until(lambda: all_final(catalog, ids), timeout=90, interval=0.3, what="every job to finish")
    assert proc.poll() is None, "the worker must survive its jobs"

    failed = catalog.jobs.get(raises.id)
    assert (failed.status, failed.attempt, failed.error_type) == ("failed", 2, "ValueError")
    assert failed.error_message == "probe raises failed" and "raise" in failed.error_traceback
    shown = Cli(db_url, store_root)("jobs", "show", str(raises.id))
    assert shown.exit_code == 0 and "ValueError: probe raises failed" in shown.stdout and "Traceback" in shown.stdout
    crashed = catalog.jobs.get(crashes.id)
    assert (crashed.status, crashed.attempt, crashed.error_type) == ("failed", 1, "ExecutorDied")
    assert "exited with code 3" in crashed.error_message
    timed_out = catalog.jobs.get(slow.id)
    assert (timed_out.status, timed_out.error_type, timed_out.attempt) == ("failed", "TimeLimitExceeded", 1)
    assert "time limit exceeded" in timed_out.error_message
    assert catalog.jobs.get(cancelled_running.id).status == "cancelled"
    assert catalog.jobs.get(cancelled_queued.id).status == "cancelled"
    assert catalog.jobs.get(fine.id).status == "succeeded"
    assert [r.job_id for r in catalog.results.list()] == [fine.id]
    assert executions(log, "start") == {"raises": 2, "crashes": 1, "slow": 1, "cancel-running": 1, "fine": 1}
    logs = Cli(db_url, store_root)("jobs", "logs", str(cancelled_running.id), "--format", "json")
    assert [e["kind"] for e in json.loads(logs.stdout)][-2:] == ["cancel_requested", "cancelled"]
    expected = {f"{raises.id} failed", f"{crashes.id} failed", f"{slow.id} failed",
                f"{cancelled_running.id} cancelled", f"{fine.id} succeeded"}
    wait_until(lambda: set(executions(tmp_path / "hook.log", "finished")) >= {e.split()[0] for e in expected},
               timeout=10, what="the job_finished hook")
    hooked = {" ".join(line.split()[1:]) for line in (tmp_path / "hook.log").read_text().splitlines()}
    assert hooked == expected

    # SIGTERM: the running job gets --grace (0.5 s) to finish, then is released, its attempt not counted
    long = enqueue(catalog, probe("long", log, sleep=60, steps=600)).job
    wait_until(lambda: catalog.jobs.get(long.id).progress > 0, what="the long job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    released = catalog.jobs.get(long.id)
    assert (released.status, released.attempt, released.worker_id) == ("queued", 0, None)
    assert [e.kind for e in catalog.jobs.list_events(long.id)][-2:] == ["claimed", "released"]
    assert catalog.workers.list()[0].status == "stopped"


def test_run_wait_follows_a_fanned_out_job_to_the_inline_result(db_url: str, store_root: Path,
                                                                workers: Workers) -> None:
    import numpy as np

    from lsdb.analyses.runner import AnalysisRequest, compute, load_view, prepare

    catalog = open_db(db_url, store_root)
    for _ in range(2):
        workers.start(db_url, "--device", "cpu", "--inprocess", "--lease", "5", *FAST)
    cli = Cli(db_url, store_root)
    out = cli("run", "grid", "-p", "rows=300", "-p", "cols=10", "--wait", "--format", "json")
    assert out.exit_code == 0, out.stderr
    shown = json.loads(out.stdout)
    parent = catalog.jobs.get(shown["job_id"])
    tiles = catalog.jobs.list(parent_id=parent.id)
    assert parent.status == "succeeded" and [t.payload["tile"]["part"] for t in tiles] == [[0, 102], [102, 204],
                                                                                          [204, 300]]
    request = AnalysisRequest("grid", params={"rows": "300", "cols": "10"})
    inline, _, _ = compute(catalog, prepare(catalog, request), device="cpu")
    stored = load_view(catalog, catalog.results.get(shown["id"]))
    np.testing.assert_array_equal(stored.arrays["values"], inline.arrays["values"])
    assert stored.scalars == shown["scalars"] == inline.scalars
    again = cli("run", "grid", "-p", "rows=300", "-p", "cols=10", "--format", "json")
    assert json.loads(again.stdout)["id"] == shown["id"] and json.loads(again.stdout)["computed"] is False


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_survive_terminated_database_connections(pg_url: str, store_root: Path, tmp_path: Path,
                                                         workers: Workers) -> None:
    from sqlalchemy import create_engine, text

    catalog = open_db(pg_url, store_root)
    log = tmp_path / "executions.log"
    n = 120
    ids = [enqueue(catalog, probe(f"p{i}", log, sleep=0.05)).job.id for i in range(n)]
    for _ in range(3):
        workers.start(pg_url, "--device", "cpu", "--inprocess", "--lease", "5", *FAST)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    terminated = 0
    for _ in range(4):
        wait_until(lambda t=terminated: sum(s == "succeeded" for s in statuses(catalog, ids).values()) > t * n // 5,
                   timeout=60, what="progress between terminations")
        with admin.connect() as conn:
            terminated += 1
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    admin.dispose()
    catalog.close()
    catalog = open_db(pg_url, store_root)
    wait_until(lambda: all_final(catalog, ids), timeout=120, what="every job to finish")
    assert set(statuses(catalog, ids).values()) == {"succeeded"}
    results = catalog.results.list()
    assert len(results) == n and len({r.job_id for r in results}) == n
    counts = executions(log)
    assert set(counts) == {f"p{i}" for i in range(n)}
    for token, count in counts.items():  # a rerun only through the documented path: an expired lease
        if count > 1:
            job_id = ids[int(token[1:])]
            assert "lease_expired" in [e.kind for e in catalog.jobs.list_events(job_id)], token
    assert all(p.poll() is None for p in workers.procs), "every worker must survive"


def test_supervisor_restarts_a_crashed_worker(sqlite_url: str, store_root: Path, workers: Workers) -> None:
    catalog = open_db(sqlite_url, store_root)
    sup = workers.start(sqlite_url, "start", "--devices", "2", "--inprocess", "--lease", "2", "--poll", "0.2",
                        noun="workers")

    def alive() -> list[dict[str, Any]]:
        out = Cli(sqlite_url, store_root)("workers", "--lease", "2", "--format", "json")
        return [w for w in json.loads(out.stdout) if w["alive"]]

    first = wait_until(lambda: len(alive()) == 2 and alive(), timeout=60, what="two live workers")
    os.kill(first[0]["pid"], signal.SIGKILL)
    wait_until(lambda: len(catalog.workers.list()) == 3 and len(alive()) == 2, timeout=60,
               what="a replacement worker")
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=30) == 0
    assert sorted(w.status for w in catalog.workers.list()).count("stopped") == 2


@pytest.mark.slow
def test_ray_places_ordinary_workers(sqlite_url: str, store_root: Path, workers: Workers) -> None:
    pytest.importorskip("ray")
    catalog = open_db(sqlite_url, store_root)
    job = enqueue(catalog, probe("on-ray")).job
    driver = workers.start(sqlite_url, "start", "--backend", "ray", "--num-workers", "1", "--gpus-per-worker", "0",
                           "--inprocess", "--poll", "0.2", noun="workers")
    wait_until(lambda: catalog.jobs.get(job.id).status == "succeeded", timeout=180, what="a Ray-placed worker")
    assert len(catalog.workers.list()) == 1
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) == 0
