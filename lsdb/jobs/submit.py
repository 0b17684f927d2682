"""Submitting jobs: enqueue a request (deduplicated, fanned out into tiles), follow a job.

`enqueue` validates the request with `prepare()` before anything is queued, so a bad
request fails in the user's shell, not in a worker; tile jobs get their params validated and
their cache keys from the prepared request (`Prepared.with_params`), and the parent and all its
tiles are inserted in one batched transaction (at most `MAX_TILES` tiles). A request whose result exists returns
the result; one that is already queued or running (same ``cache_key``) returns that job.
An analysis that declares ``tile``/``merge`` and is larger than the tile size becomes one
tile job per part plus a ``waiting`` parent that merges them once the last tile lands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsdb.catalog.jobs import FINAL, JobRecord, NewJob, WorkerRecord
from lsdb.errors import BadInput

if TYPE_CHECKING:
    from lsdb.analyses.runner import AnalysisRequest
    from lsdb.catalog import CatalogDB, ResultRecord
    from lsdb.registry import Registries

#: Work units (grid points for a surface) per tile when the caller does not say.
DEFAULT_TILE_SIZE = 1024
#: The most tile jobs one request may fan out into (a 2048 x 2048 surface in 1,024-point tiles is 4,096).
MAX_TILES = 10_000


@dataclass(frozen=True)
class Enqueued:
    """What `enqueue` did: found a `result`, found an active `job`, or `created` one (with `tiles`)."""

    job: JobRecord | None = None
    result: ResultRecord | None = None
    created: bool = False
    tiles: int = 0


def resources_for(device: str) -> tuple[str, ...]:
    """The job resources a worker on `device` serves: CUDA workers take everything, CPU ones no "gpu"."""
    return ("gpu", "cpu", "any") if device.startswith("cuda") else ("cpu", "any")


def enqueue(
    catalog: CatalogDB,
    request: AnalysisRequest,
    *,
    queue: str = "default",
    priority: int = 0,
    force: bool = False,
    max_attempts: int = 3,
    time_limit_s: float | None = None,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    registries: Registries | None = None,
) -> Enqueued:
    """Queue `request` for the workers, unless its result exists or the same job is active."""
    from lsdb.analyses.runner import prepare

    prepared = prepare(catalog, request, registries)
    if not force:
        cached = catalog.results.find(prepared.cache_key)
        if cached is not None:
            return Enqueued(result=cached)
    spec = prepared.spec

    def new_job(req: AnalysisRequest, cache_key: str, **extra: Any) -> NewJob:
        payload = {"request": req.to_json(), "force": force, **extra}
        return NewJob(spec.name, payload, cache_key, queue, spec.resources, priority, max_attempts, time_limit_s)

    tiles: list[NewJob] = []
    overrides = spec.tile(prepared.params, tile_size) if spec.tile and spec.merge and tile_size else []
    if len(overrides) > MAX_TILES:
        raise BadInput(f"{spec.name}: {len(overrides)} tiles of {tile_size} points is more than {MAX_TILES}; "
                       "use a smaller grid or a larger tile size")
    if len(overrides) > 1:
        for override in overrides:  # each tile's params validated and keyed without a full prepare()
            part, key = prepared.with_params(override)
            tiles.append(new_job(part, key, tile=override))
    parent = new_job(request, prepared.cache_key, **({"fanout": len(tiles)} if tiles else {}))
    job, created = catalog.jobs.add(parent, tiles)
    return Enqueued(job=job, created=created, tiles=len(tiles) if created else 0)


def job_progress(catalog: CatalogDB, job: JobRecord) -> tuple[float, str]:
    """(fraction, message) of a job; a fan-out parent counts its tiles while it waits."""
    if job.status == "waiting" or (job.payload.get("fanout") and job.status == "queued"):
        tiles = catalog.jobs.list(parent_id=job.id)
        if tiles:
            done = sum(t.status == "succeeded" for t in tiles)
            fraction = sum(1.0 if t.status == "succeeded" else t.progress for t in tiles) / len(tiles)
            return 0.95 * fraction, f"{done}/{len(tiles)} tiles"
    if job.status == "succeeded":
        return 1.0, "done"
    return job.progress, job.progress_message or job.status


def wait_for_job(
    catalog: CatalogDB,
    job_id: int,
    on_progress: Callable[[JobRecord, float, str], None] | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
) -> JobRecord:
    """Poll a job until it is succeeded, failed or cancelled (or `timeout_s` passes); its last record."""
    start = time.monotonic()
    while True:
        job = catalog.jobs.get(job_id)
        if on_progress is not None:
            fraction, message = job_progress(catalog, job)
            on_progress(job, fraction, message)
        if job.status in FINAL or (timeout_s is not None and time.monotonic() - start > timeout_s):
            return job
        time.sleep(poll_s)


def worker_rows(catalog: CatalogDB, lease_s: float = 30.0) -> list[tuple[WorkerRecord, bool]]:
    """Every registered worker and whether it is alive: not stopped, heartbeat within 3 leases."""
    now = catalog.db.now_ms()
    return [(w, w.status not in ("stopped", "lost") and now - w.heartbeat <= 3 * lease_s * 1000)
            for w in catalog.workers.list()]
