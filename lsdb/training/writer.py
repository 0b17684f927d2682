"""Catalog writes of a training run, off the training thread and in order.

A snapshot is copied once on the training thread (one memcpy on a CPU; on a GPU the
device-to-host copy any save needs) and then encoded, published and committed by one
background thread, so the loop never waits for a fsync or a database commit. Metric values are
batched: a transaction per epoch costs more than a digits epoch. So are checkpoint rows: a
checkpoint's blobs are published (durably) at once, its row is committed with the others of the
last `ROWS_FLUSH_S` seconds in one transaction (the writer wakes up for it), and always before
`close` returns. A crash can thus lose the rows of the last second's checkpoints, never leave a
row without its blobs (unreferenced blobs are collected by `lsdb gc`). Measured on the digits MLP,
whose epochs take ~20 ms, a transaction per checkpoint costs more CPU than the epoch's training.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from lsdb.catalog import CatalogDB, CheckpointRecord, NewCheckpoint, NewRun

WRITE_AHEAD = 4
"""Snapshots queued before training waits for the writer (bounds memory)."""
METRICS_FLUSH_S = 2.0
"""Metric values are written at most this often, and always at the end."""
ROWS_FLUSH_S = 1.0
"""A published checkpoint's row is committed at most this long after (with the background thread)."""


class CatalogWriter:
    """Runs catalog writes in order, on a background thread (or inline), and remembers the checkpoints.

    An error in the thread stops further writes and is raised in the training thread at its next
    `put` (or at `close`), so training never runs on while its checkpoints are not being saved.
    """

    def __init__(self, catalog: CatalogDB, run: NewRun, run_id: int, background: bool) -> None:
        self.catalog, self.run, self.run_id = catalog, run, run_id
        self.saved: list[CheckpointRecord] = []
        self.metrics: list[tuple[str, int, float]] = []
        self._flushed = time.monotonic()
        self.error: BaseException | None = None
        self.pending: list[NewCheckpoint] = []  # published, not yet committed (the writer thread's)
        self._rows_flushed = time.monotonic()
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
            job()
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
            self.put(lambda: self.catalog.metrics.add(self.run_id, items))

    def stage(self, new: NewCheckpoint) -> None:
        """In a job: queue the row of a published checkpoint; commit the queued rows when due
        (at once without the background thread)."""
        self.pending.append(new)
        if self._thread is None or time.monotonic() - self._rows_flushed >= ROWS_FLUSH_S:
            self._commit_rows()

    def _commit_rows(self) -> None:
        from lsdb.ingest import announce

        self._rows_flushed = time.monotonic()
        if not self.pending:
            return
        results = self.catalog.checkpoints.add_many(self.run_id, self.pending)
        self.pending = []
        for record, created in results:
            self.saved.append(record)
            if created:
                announce(record)

    def _loop(self) -> None:
        while True:
            due = self._rows_flushed + ROWS_FLUSH_S - time.monotonic()
            try:
                job = self._queue.get(timeout=max(due, 0.0) if self.pending and self.error is None else None)
            except queue.Empty:
                job = self._commit_rows
            if job is None:
                break
            if self.error is None:
                try:
                    job()
                except BaseException as exc:  # handed to the training thread
                    self.error = exc

    def close(self, raise_error: bool = True) -> None:
        """Write the buffered metrics, finish every queued write; then raise the first write error, if any."""
        if self.error is None:
            try:
                self.flush_metrics()
                self.put(self._commit_rows)
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
