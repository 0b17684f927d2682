"""Jobs and workers (docs/architecture.md, "The job protocol"): submitting and following jobs,
the worker loop, its executors, the supervisor.

The catalog side of the protocol (claim, lease, fenced completion, reaper) is
`lsdb.catalog.jobs`; this package is what runs on top of it: `submit` (enqueue, follow),
`worker`, `executor`, `supervisor`, and `transient` (retrying dropped connections).
"""

from lsdb.jobs.submit import DEFAULT_TILE_SIZE, Enqueued, enqueue, job_progress, resources_for, wait_for_job

__all__ = ["DEFAULT_TILE_SIZE", "Enqueued", "enqueue", "job_progress", "resources_for", "wait_for_job"]
