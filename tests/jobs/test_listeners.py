"""Listener semantics with real worker processes (issue #14, §3): `result_stored` and `job_finished`
run exactly once per job's final state, on the process that committed it, after the commit, even
with a slow (0.6 s) listener, a ``kill -9`` of a job process and of a worker, and a job that
crashes once and succeeds on its retry. A factory raising `SystemExit` fails its job, not the job
process, and job processes never import from the worker's current folder.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from lsdb.jobs.submit import enqueue
from lsdb.testing import open_db
from tests.jobs.conftest import Workers, probe, wait_until, worker_env
from tests.jobs.plugin_jobs import executions
from tests.jobs.test_workers import FAST, all_final


def _start_pid(log: Path, token: str) -> int | None:
    if not log.exists():
        return None
    pids = [int(p[2]) for p in (line.split() for line in log.read_text().splitlines()) if p[:2] == ["start", token]]
    return pids[-1] if pids else None


def test_listeners_run_exactly_once_per_final_state(db_url: str, store_root: Path, tmp_path: Path, workers: Workers,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = open_db(db_url, store_root)
    log, hooks, stored = tmp_path / "executions.log", tmp_path / "finished.log", tmp_path / "stored.log"
    monkeypatch.setenv("LSDB_TEST_JOB_LOG", str(hooks))
    monkeypatch.setenv("LSDB_TEST_STORED_LOG", str(stored))
    monkeypatch.setenv("LSDB_TEST_LISTENER_SLEEP", "0.6")  # > the heartbeat interval (lease 1.5 s / 3)
    kill_child = enqueue(catalog, probe("kill-child", log, sleep=6, steps=60), priority=9).job
    kill_worker = enqueue(catalog, probe("kill-worker", log, sleep=6, steps=60), priority=8).job
    once = enqueue(catalog, probe("crash-once", log, crash_once=str(tmp_path / "crashed")), priority=7).job
    exits = enqueue(catalog, probe("exits", log, exit=True), max_attempts=1, priority=6).job
    fails = enqueue(catalog, probe("fails", log, fail="ValueError"), max_attempts=1, priority=6).job
    plain = [enqueue(catalog, probe(f"plain{i}", log, sleep=0.05)).job for i in range(6)]
    ids = [kill_child.id, kill_worker.id, once.id, exits.id, fails.id] + [j.id for j in plain]
    for _ in range(2):
        workers.start(db_url, "--device", "cpu", "--lease", "1.5", *FAST)  # child job processes

    child = wait_until(lambda: _start_pid(log, "kill-child"), timeout=120, what="the first job to start")
    time.sleep(0.5)
    os.kill(child, signal.SIGKILL)  # the job process: the attempt is crashed and retried
    running = wait_until(lambda: (j := catalog.jobs.get(kill_worker.id)).status == "running" and j.progress > 0
                         and j, timeout=120, what="the second job to run")
    victim = next(w for w in catalog.workers.list() if w.id == running.worker_id)
    os.kill(victim.pid, signal.SIGKILL)  # its worker: the lease expires, another worker reruns it
    workers.start(db_url, "--device", "cpu", "--lease", "1.5", *FAST)
    wait_until(lambda: all_final(catalog, ids), timeout=240, interval=0.5, what="every job to finish")

    final = {j.id: j for j in catalog.jobs.list() if j.id in ids}
    assert {i: final[i].status for i in ids} == {**{i: "succeeded" for i in ids},
                                                   exits.id: "failed", fails.id: "failed"}
    assert final[exits.id].error_type == "SystemExit" and "\n" not in final[exits.id].error_message
    assert final[kill_child.id].attempt == 2 and final[once.id].attempt == 2
    assert "lease_expired" in [e.kind for e in catalog.jobs.list_events(kill_worker.id)]
    succeeded = [i for i in ids if final[i].status == "succeeded"]
    assert sorted(r.job_id for r in catalog.results.list()) == sorted(succeeded)  # exactly-once results
    wait_until(lambda: set(executions(hooks, "finished")) == {str(i) for i in ids}, timeout=30,
               what="every job_finished notice")
    time.sleep(2)  # a late (replayed) notice would land now
    assert executions(hooks, "finished") == {str(i): 1 for i in ids}
    statuses = {tuple(line.split()[1:3]) for line in hooks.read_text().splitlines()}
    assert statuses == {(str(i), final[i].status) for i in ids}
    assert executions(stored, "stored") == {str(i): 1 for i in succeeded}
    assert all(p.poll() is None for p in workers.procs if p.pid != victim.pid), "the workers must survive"
    for p in workers.procs:  # a worker never mistook its own fenced success for a lost lease
        if p.pid != victim.pid:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    assert "lease lost" not in workers.tails(10**7)


def test_job_processes_do_not_import_from_the_workers_folder_and_survive_system_exit(
        sqlite_url: str, store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsdb.catalog.jobs import Fence
    from lsdb.jobs.executor import ChildExecutor, child_command

    catalog = open_db(sqlite_url, store_root)
    evil = tmp_path / "cwd"
    evil.mkdir()
    marker = tmp_path / "imported"
    for name in ("torch", "lsdb", "numpy", "sqlalchemy"):
        (evil / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write('{name}\\n')\nraise SystemExit(9)\n")
    monkeypatch.setenv("PYTHONPATH", worker_env()["PYTHONPATH"])
    monkeypatch.chdir(evil)
    assert "-P" in child_command() or sys.version_info < (3, 11)
    executor = ChildExecutor(sqlite_url, store_root, threads=1)
    try:
        executor.ensure_ready()
        pid = executor.proc.pid if executor.proc else None
        log = tmp_path / "executions.log"
        for token, params, outcome in (("exits", {"exit": True}, "failed"), ("after", {}, "succeeded")):
            job = enqueue(catalog, probe(token, log, **params), max_attempts=1).job
            claimed = catalog.jobs.claim("test-worker", ["default"], ["cpu", "any"], 30)
            assert claimed is not None and claimed.id == job.id
            executor.start(claimed, Fence(claimed.id, "test-worker", claimed.attempt), "cpu")
            msg = wait_until(lambda: (m := executor.poll(0.2)) and m.get("type") in ("done", "exit") and m,
                             timeout=60, what=f"job {token}")
            assert msg["type"] == "done" and msg["outcome"] == outcome, msg
            if outcome == "failed":
                assert msg["error_type"] == "SystemExit" and "SystemExit" in msg["message"]
        assert executor.proc is not None and executor.proc.poll() is None and executor.proc.pid == pid
    finally:
        executor.close()
    assert not marker.exists(), marker.read_text()
    os.chdir(tmp_path)
