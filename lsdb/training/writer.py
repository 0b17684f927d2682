"""Catalog writes of a training run, off the training thread and in order.

A snapshot is copied once on the training thread (one memcpy on a CPU; on a GPU the
device-to-host copy any save needs) and then encoded, published and committed by one
background thread, so the loop never waits for a fsync or a database commit. Metric values are
batched: a transaction per epoch costs more than a digits epoch.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from lsdb.catalog import Catalog, CheckpointRecord, NewRun

WRITE_AHEAD = 4
"""Snapshots queued before training waits for the writer (bounds memory)."""
METRICS_FLUSH_S = 2.0
"""Metric values are written at most this often, and always at the end; checkpoints are never delayed."""


class CatalogWriter:
    """Runs catalog writes in order, on a background thread (or inline), and remembers the checkpoints.

    An error in the thread stops further writes and is raised in the training thread at its next
    `put` (or at `close`), so training never runs on while its checkpoints are not being saved.
    """

    def __init__(self, catalog: Catalog, run: NewRun, run_id: int, background: bool) -> None:
        self.catalog, self.run, self.run_id = catalog, run, run_id
        self.saved: list[CheckpointRecord] = []
        self.metrics: list[tuple[str, int, float]] = []
        self._flushed = time.monotonic()
        self.error: BaseException | None = None
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=WRITE_AHEAD)
        self._thread = (
            threading.Thread(target=self._loop, name="lsdb-train-writer", daemon=True) if background else None
        )
        if self._thread is not None:
            self._thread.start()

    def put(self, job: Callable[[], Any]) -> None:
        if self.error is not None:
            raise self.error
        if self._thread is None:
            self._record(job())
        else:
            self._queue.put(job)

    def add_metrics(self, items: list[tuple[str, int, float]]) -> None:
        """Buffer metric values; hand them to the thread every `METRICS_FLUSH_S` seconds."""
        self.metrics.extend(items)
        if self.metrics and time.monotonic() - self._flushed >= METRICS_FLUSH_S:
            self.flush_metrics()

    def flush_metrics(self) -> None:
        items, self.metrics, self._flushed = self.metrics, [], time.monotonic()
        if items:
            self.put(lambda: self.catalog.add_metrics(self.run_id, items))

    def _record(self, value: Any) -> None:
        if isinstance(value, CheckpointRecord):
            self.saved.append(value)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._record(job())
                except BaseException as exc:  # handed to the training thread
                    self.error = exc

    def close(self, raise_error: bool = True) -> None:
        """Write the buffered metrics, finish every queued write; then raise the first write error, if any."""
        if self.error is None:
            try:
                self.flush_metrics()
            except BaseException as exc:  # inline writes fail here
                self.error = exc
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if raise_error and self.error is not None:
            raise self.error


def copy_tensors(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """CPU copies of `tensors` that later training steps cannot change."""
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


def copy_optimizer(state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer state dict with its tensors copied to the CPU and its param groups detached."""
    import torch

    per_param = {
        pid: {k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v for k, v in values.items()}
        for pid, values in state["state"].items()
    }
    return {"state": per_param, "param_groups": json.loads(json.dumps(state["param_groups"], default=list))}
