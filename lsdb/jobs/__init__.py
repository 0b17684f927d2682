"""Jobs and workers (DESIGN §6): the queue service, the worker loop, its executors, the supervisor.

The catalog side of the protocol (claim, lease, fenced completion, reaper) is
`lsdb.catalog.queue`; this package is what runs on top of it.
"""

from lsdb.jobs.queue import DEFAULT_TILE_SIZE, Enqueued, enqueue, job_progress, resources_for, wait_for_job

__all__ = ["DEFAULT_TILE_SIZE", "Enqueued", "enqueue", "job_progress", "resources_for", "wait_for_job"]
