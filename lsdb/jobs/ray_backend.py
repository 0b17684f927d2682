"""Optional Ray placement (``pip install 'lsdb[ray]'``): ordinary lsdb workers as Ray actors.

Ray only *places* workers on a cluster's GPUs; it does not schedule jobs. Each actor holds
``gpus_per_worker`` GPUs (Ray sets ``CUDA_VISIBLE_DEVICES`` to them, so inside the actor the
worker serves ``cuda:0``) and runs a `Supervisor` of one plain ``lsdb worker`` process, which
claims jobs from the catalog exactly as a worker started by hand does. The catalog stays the
single source of truth: several machines need a PostgreSQL catalog and a store root every
machine can reach. Before anything is placed, the cluster's GPUs are counted and a request
for more than it has fails at once instead of leaving actors pending forever.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from lsdb.config import Settings
from lsdb.errors import BadInput

log = logging.getLogger("lsdb.ray")


def plan_ray_workers(resources: dict[str, float], num_workers: int | None, gpus_per_worker: float) -> int:
    """How many workers to place given the cluster's `resources`; `BadInput` when they do not fit."""
    gpus = float(resources.get("GPU", 0.0))
    if gpus_per_worker < 0:
        raise BadInput("--gpus-per-worker must be >= 0")
    if num_workers is None:
        if gpus_per_worker == 0:
            raise BadInput("CPU workers on Ray need --num-workers N")
        num_workers = int(gpus // gpus_per_worker)
    if num_workers < 1:
        raise BadInput(f"the Ray cluster has {gpus:g} GPU(s): not enough for one worker of {gpus_per_worker:g}")
    need = num_workers * gpus_per_worker
    if need > gpus + 1e-9:
        raise BadInput(f"the Ray cluster has {gpus:g} GPU(s); {num_workers} worker(s) x {gpus_per_worker:g} GPU(s) "
                       f"need {need:g}")
    return num_workers


class WorkerActor:
    """The body of one Ray actor: a supervised `lsdb worker` on the GPUs Ray gave it."""

    def __init__(self, command: list[str]) -> None:
        from lsdb.jobs.supervisor import Supervisor

        self.supervisor = Supervisor([command], handle_signals=False)

    def run(self) -> int:
        return self.supervisor.run()

    def stop(self) -> None:
        self.supervisor.stop()


def start_ray_workers(
    settings: Settings,
    *,
    address: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float = 1.0,
    worker_args: Sequence[str] = (),
) -> int:
    """Place workers on a Ray cluster and wait until they exit (Ctrl-C stops them); the restarts."""
    try:
        import ray
    except ImportError:
        raise BadInput("the Ray backend needs Ray: pip install 'lsdb[ray]'") from None
    if settings.is_sqlite and address not in (None, "local"):
        log.warning("a SQLite catalog only serves workers on this machine; use PostgreSQL for a cluster")
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=True)
    count = plan_ray_workers(ray.cluster_resources(), num_workers, gpus_per_worker)
    device = "cuda:0" if gpus_per_worker > 0 else "cpu"
    command = [sys.executable, "-m", "lsdb.cli.app", "--db", settings.database_url, "--store",
               str(settings.store_root), "worker", "--device", device, *worker_args]
    # Ray's stubs omit the actor option max_concurrency (run and stop must be callable at once)
    remote: Any = ray.remote(num_gpus=gpus_per_worker, num_cpus=1, max_concurrency=2)(  # type: ignore[call-overload]
        WorkerActor)
    actors = [remote.remote(command) for _ in range(count)]
    log.info("placed %d lsdb worker(s) on Ray, %g GPU(s) each", count, gpus_per_worker)
    runs = [a.run.remote() for a in actors]
    try:
        return int(sum(ray.get(runs)))
    except KeyboardInterrupt:
        ray.get([a.stop.remote() for a in actors])
        return int(sum(ray.get(runs)))
