"""`CatalogWriter`: checkpoint rows committed in batches, on a timer, and always by `close`."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from lsdb.catalog import NewRun
from lsdb.ingest import publish_tensors
from lsdb.training import writer as writer_module
from lsdb.training.writer import CatalogWriter


def _publish(catalog, step: int):  # type: ignore[no-untyped-def]
    return publish_tensors(catalog.objects, {"w": torch.full((3,), float(step))}, step=step)


def test_rows_of_published_checkpoints_are_committed_within_the_flush_interval(catalog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(writer_module, "ROWS_FLUSH_S", 0.3)
    run = catalog.runs.add(NewRun("w"))
    w = CatalogWriter(catalog, NewRun("w"), run.id, background=True)
    for step in range(3):
        w.put(lambda step=step: w.stage(_publish(catalog, step)))
    deadline = time.monotonic() + 10
    while len(catalog.checkpoints.list("w")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # no more saves come: the writer wakes up by itself
    assert [c.step for c in catalog.checkpoints.list("w")] == [0, 1, 2]
    w.put(lambda: w.stage(_publish(catalog, 3)))
    w.close()  # commits what is pending, at once
    assert [c.step for c in catalog.checkpoints.list("w")] == [0, 1, 2, 3]
    assert sorted(c.step for c in w.saved) == [0, 1, 2, 3]


def test_a_failed_commit_reaches_the_training_thread_and_commits_nothing(catalog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(writer_module, "ROWS_FLUSH_S", 60.0)
    run = catalog.runs.add(NewRun("f"))
    w = CatalogWriter(catalog, NewRun("f"), run.id, background=True)
    w.put(lambda: w.stage(_publish(catalog, 0)))
    w.put(lambda: w.stage(_publish(catalog, 1)))
    bad = _publish(catalog, 2)
    w.put(lambda: w.stage(dataclasses.replace(bad, schema_digest=None)))  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(Exception):  # noqa: B017, PT011 - the database's own error, whatever the backend
        w.close()
    assert catalog.checkpoints.list("f") == []  # one transaction: all or none


def test_inline_writer_commits_each_row_at_once(catalog) -> None:  # type: ignore[no-untyped-def]
    run = catalog.runs.add(NewRun("i"))
    w = CatalogWriter(catalog, NewRun("i"), run.id, background=False)
    w.put(lambda: w.stage(_publish(catalog, 5)))
    assert [c.step for c in catalog.checkpoints.list("i")] == [5]
    w.close()
