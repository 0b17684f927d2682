"""The queue's catalog contract, on SQLite and PostgreSQL: claim order and filters, fencing,
retries with backoff, the reaper, cancellation, release, deduplication and fan-out.

These drive the catalog methods and the executor in this process; the tests with real
worker processes are in test_workers.py.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from lsdb.analyses.runner import AnalysisRequest, compute, load_view, prepare
from lsdb.catalog.jobs import Fence
from lsdb.errors import BadInput, JobLost
from lsdb.jobs.executor import execute_job
from lsdb.jobs.submit import enqueue, resources_for
from tests.jobs.conftest import probe

CPU = resources_for("cpu")


def run_claimed(catalog: Any, job: Any, **kw: Any) -> dict[str, Any]:
    return execute_job(catalog, {"id": job.id, "payload": job.payload}, job.fence, "cpu", **kw)


def drain(catalog: Any, worker: str = "w1") -> list[int]:
    """Claim and run jobs in this process until none is runnable; the ids run."""
    done = []
    while (job := catalog.jobs.claim(worker, ["default"], CPU, 30)) is not None:
        outcome = run_claimed(catalog, job)
        assert outcome["outcome"] == "succeeded", outcome
        done.append(job.id)
    return done


def kinds(catalog: Any, job_id: int) -> list[str]:
    return [e.kind for e in catalog.jobs.list_events(job_id)]


def test_enqueue_returns_the_active_job_then_the_result(any_catalog: Any) -> None:
    first = enqueue(any_catalog, probe("a"))
    again = enqueue(any_catalog, probe("a"))
    assert first.created and not again.created and again.job.id == first.job.id
    assert drain(any_catalog) == [first.job.id]
    done = enqueue(any_catalog, probe("a"))
    assert done.job is None and done.result is not None
    assert done.result.id == any_catalog.jobs.get(first.job.id).result_id
    assert done.result.job_id == first.job.id
    assert kinds(any_catalog, first.job.id) == ["enqueued", "claimed", "succeeded"]


def test_enqueue_refuses_a_bad_request_before_queueing(any_catalog: Any) -> None:
    with pytest.raises(BadInput, match="unknown parameter"):
        enqueue(any_catalog, AnalysisRequest("probe", params={"nope": "1"}))
    assert any_catalog.jobs.list() == []


def test_claim_takes_priority_then_age(any_catalog: Any) -> None:
    ids = [enqueue(any_catalog, probe(t), priority=p).job.id for t, p in (("a", 0), ("b", 5), ("c", 0), ("d", 5))]
    order = [any_catalog.jobs.claim("w", ["default"], CPU, 30).id for _ in ids]
    assert order == [ids[1], ids[3], ids[0], ids[2]]
    assert any_catalog.jobs.claim("w", ["default"], CPU, 30) is None


def test_claim_serves_only_its_queues_and_resources(any_catalog: Any) -> None:
    other = enqueue(any_catalog, probe("q"), queue="big").job
    gpu = enqueue(any_catalog, AnalysisRequest("gpu_probe", params={"token": "g"})).job
    assert gpu.resource == "gpu"
    assert any_catalog.jobs.claim("cpu-worker", ["default"], CPU, 30) is None
    assert any_catalog.jobs.claim("cpu-worker", ["big"], CPU, 30).id == other.id
    assert any_catalog.jobs.claim("gpu-worker", ["default"], resources_for("cuda:0"), 30).id == gpu.id


def test_claim_uses_the_database_clock_and_counts_attempts(any_catalog: Any) -> None:
    job = enqueue(any_catalog, probe("t"), max_attempts=4).job
    before = any_catalog.db.now_ms()
    claimed = any_catalog.jobs.claim("w", ["default"], CPU, 10)
    after = any_catalog.db.now_ms()
    assert claimed.id == job.id and claimed.status == "running" and claimed.attempt == 1
    assert claimed.worker_id == "w" and before <= claimed.started_at <= after
    assert before + 10_000 <= claimed.lease_expires <= after + 10_000


def test_completion_of_a_reaped_attempt_rolls_back_and_leaves_only_an_orphan_file(any_catalog: Any) -> None:
    from lsdb.maintenance import gc

    job = enqueue(any_catalog, probe("fenced")).job
    stale = any_catalog.jobs.claim("old", ["default"], CPU, 0.001)
    time.sleep(0.05)
    assert any_catalog.jobs.reap_expired() == [job.id]
    assert any_catalog.jobs.get(job.id).status == "queued"
    assert any_catalog.jobs.heartbeat("old", stale.fence, 30).lost
    with pytest.raises(JobLost):
        any_catalog.jobs.fail(stale.fence, "X", "late")
    assert run_claimed(any_catalog, stale)["outcome"] == "lost"  # computed, then refused at commit
    assert any_catalog.results.list() == [] and any_catalog.blobs.list() == []
    assert len(list(any_catalog.objects.iter_digests())) == 1  # the orphan artifact
    assert len(gc(any_catalog, older_than_s=0).removed_objects) == 1
    assert drain(any_catalog, "new") == [job.id]
    final = any_catalog.jobs.get(job.id)
    assert final.status == "succeeded" and final.attempt == 2 and final.worker_id == "new"
    assert len(any_catalog.results.list()) == 1
    assert kinds(any_catalog, job.id) == ["enqueued", "claimed", "lease_expired", "claimed", "succeeded"]


def test_failure_is_retried_with_exponential_backoff_then_failed(any_catalog: Any) -> None:
    job = enqueue(any_catalog, probe("f", fail="ValueError"), max_attempts=2).job
    claimed = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    outcome = run_claimed(any_catalog, claimed)
    assert outcome["outcome"] == "failed" and outcome["error_type"] == "ValueError"
    now = any_catalog.db.now_ms()
    retried = any_catalog.jobs.fail(claimed.fence, outcome["error_type"], outcome["message"], outcome["traceback"],
                                   backoff_s=0.4)
    assert retried.status == "queued" and retried.worker_id is None
    assert now + 300 <= retried.run_after <= any_catalog.db.now_ms() + 400
    assert any_catalog.jobs.claim("w", ["default"], CPU, 30) is None  # not before run_after
    time.sleep(0.45)
    second = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    assert second.id == job.id and second.attempt == 2
    failed = any_catalog.jobs.fail(second.fence, "ValueError", "probe f failed", "Traceback: ...", backoff_s=0.4)
    assert failed.status == "failed" and failed.error_type == "ValueError"
    assert failed.error_message == "probe f failed" and failed.error_traceback == "Traceback: ..."
    assert failed.finished_at is not None
    assert kinds(any_catalog, job.id) == ["enqueued", "claimed", "retried", "claimed", "failed"]


def test_reaper_fails_a_job_without_attempts_left(any_catalog: Any) -> None:
    job = enqueue(any_catalog, probe("r"), max_attempts=1).job
    any_catalog.jobs.claim("w", ["default"], CPU, 0.001)
    time.sleep(0.05)
    assert any_catalog.jobs.reap_expired() == [job.id]
    final = any_catalog.jobs.get(job.id)
    assert final.status == "failed" and final.error_type == "LeaseExpired"


def test_cancel_queued_at_once_and_running_cooperatively(any_catalog: Any) -> None:
    queued = enqueue(any_catalog, probe("q")).job
    assert any_catalog.jobs.cancel(queued.id).status == "cancelled"
    running = enqueue(any_catalog, probe("r", sleep=5, steps=50)).job
    claimed = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    assert claimed.id == running.id
    assert any_catalog.jobs.cancel(running.id).cancel_requested
    assert any_catalog.jobs.heartbeat("w", claimed.fence, 30).cancel_requested
    start = time.monotonic()
    outcome = run_claimed(any_catalog, claimed, should_cancel=lambda: True)
    assert outcome["outcome"] == "cancelled" and time.monotonic() - start < 1
    any_catalog.jobs.finish_cancelled(claimed.fence)
    assert any_catalog.jobs.get(running.id).status == "cancelled"
    assert any_catalog.results.list() == []
    assert any_catalog.jobs.retry(running.id).status == "queued"
    with pytest.raises(BadInput, match="only failed or cancelled"):
        any_catalog.jobs.retry(running.id)


def test_release_requeues_without_counting_the_attempt(any_catalog: Any) -> None:
    job = enqueue(any_catalog, probe("x")).job
    claimed = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    any_catalog.jobs.release(claimed.fence)
    again = any_catalog.jobs.get(job.id)
    assert again.status == "queued" and again.attempt == 0 and again.worker_id is None
    assert any_catalog.jobs.claim("w2", ["default"], CPU, 30).attempt == 1
    assert kinds(any_catalog, job.id) == ["enqueued", "claimed", "released", "claimed"]


def test_fan_out_merges_tiles_into_the_inline_result(any_catalog: Any) -> None:
    request = AnalysisRequest("grid", params={"rows": "11", "cols": "5"})
    out = enqueue(any_catalog, request, tile_size=20)
    assert out.created and out.tiles == 3 and out.job.status == "waiting"
    tiles = any_catalog.jobs.list(parent_id=out.job.id)
    assert [t.payload["tile"]["part"] for t in tiles] == [[0, 4], [4, 8], [8, 11]]
    assert drain(any_catalog) == [t.id for t in tiles] + [out.job.id]  # the parent last, once woken
    parent = any_catalog.jobs.get(out.job.id)
    assert parent.status == "succeeded" and "tiles_done" in kinds(any_catalog, parent.id)
    stored = load_view(any_catalog, any_catalog.results.get(parent.result_id))
    inline, _, _ = compute(any_catalog, prepare(any_catalog, request), device="cpu")
    assert set(stored.arrays) == set(inline.arrays)
    for name, value in inline.arrays.items():
        np.testing.assert_array_equal(stored.arrays[name], value)
    assert stored.scalars == inline.scalars
    assert enqueue(any_catalog, request, tile_size=20).result.id == parent.result_id


def test_a_failed_tile_fails_its_parent_and_cancels_the_rest(any_catalog: Any) -> None:
    out = enqueue(any_catalog, AnalysisRequest("grid", params={"rows": "9", "cols": "5"}), tile_size=15,
                  max_attempts=1)
    first = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    any_catalog.jobs.fail(first.fence, "ValueError", "boom")
    parent = any_catalog.jobs.get(out.job.id)
    assert parent.status == "failed" and parent.error_type == "TileFailed"
    assert [t.status for t in any_catalog.jobs.list(parent_id=parent.id)] == ["failed", "cancelled", "cancelled"]
    assert any_catalog.jobs.retry(parent.id).status == "waiting"
    assert len(drain(any_catalog)) == 4
    assert any_catalog.jobs.get(parent.id).status == "succeeded"


def test_cancelling_a_fan_out_parent_cancels_its_tiles(any_catalog: Any) -> None:
    out = enqueue(any_catalog, AnalysisRequest("grid", params={"rows": "9", "cols": "5"}), tile_size=15)
    running = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    assert any_catalog.jobs.cancel(out.job.id).status == "cancelled"
    statuses = {t.id: (t.status, t.cancel_requested) for t in any_catalog.jobs.list(parent_id=out.job.id)}
    assert statuses[running.id] == ("running", True)
    assert sorted(s for s, _ in statuses.values()) == ["cancelled", "cancelled", "running"]


def test_a_stale_fence_cannot_succeed(any_catalog: Any) -> None:
    enqueue(any_catalog, probe("s"))
    claimed = any_catalog.jobs.claim("w", ["default"], CPU, 30)
    with pytest.raises(JobLost):
        any_catalog.jobs.complete(Fence(claimed.id, "w", claimed.attempt + 1), result_id=1)
    with pytest.raises(JobLost):
        any_catalog.jobs.release(Fence(claimed.id, "someone-else", claimed.attempt))
    assert any_catalog.jobs.get(claimed.id).status == "running"


def test_workers_register_and_heartbeat(any_catalog: Any) -> None:
    from lsdb.jobs.submit import worker_rows

    any_catalog.workers.register("w1", "host", 123, "cpu", ["default"])
    enqueue(any_catalog, probe("h"))
    job = any_catalog.jobs.claim("w1", ["default"], CPU, 30)
    any_catalog.jobs.heartbeat("w1", job.fence, 30, 0.5, "half")
    (w, alive), = worker_rows(any_catalog)
    assert alive and w.status == "busy" and w.current_job == job.id
    assert any_catalog.jobs.get(job.id).progress == 0.5
    any_catalog.workers.set_status("w1", "stopped")
    (w, alive), = worker_rows(any_catalog)
    assert not alive and w.current_job is None
