"""The catalog's contract, run against SQLite and the real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lsdb.catalog import NewCheckpoint, NewRun
from lsdb.errors import BadInput, NotFound


def _ckpt(digest: str, step: int | None = None, schema: str = "s" * 64) -> NewCheckpoint:
    return NewCheckpoint(
        tensor_digest=digest,
        schema_digest=schema,
        n_params=10,
        n_tensors=2,
        blob_digest=digest,
        blob_size=100,
        blob_path=f"objects/sha256/{digest[:2]}/{digest[2:]}",
        step=step,
    )


def test_add_checkpoint_creates_run_and_dedupes(any_catalog) -> None:  # type: ignore[no-untyped-def]
    run = NewRun("r1", model_spec={"name": "mlp", "kwargs": {}})
    rec, created = any_catalog.checkpoints.add(run, _ckpt("a" * 64, step=1))
    assert created and rec.run == "r1" and rec.step == 1
    again, created2 = any_catalog.checkpoints.add(run, _ckpt("a" * 64, step=5))
    assert not created2 and again.id == rec.id and again.step == 1
    assert len(any_catalog.checkpoints.list("r1")) == 1
    assert len(any_catalog.blobs.list()) == 1


def test_add_checkpoint_to_a_run_given_by_id_and_the_json_listing(any_catalog) -> None:  # type: ignore[no-untyped-def]
    first, _ = any_catalog.checkpoints.add(NewRun("by-id", "p"), _ckpt("9" * 64, step=1))
    second, created = any_catalog.checkpoints.add(first.run_id, _ckpt("8" * 64, step=2))
    assert created and (second.run, second.project, second.run_id) == ("by-id", "p", first.run_id)
    again, created2 = any_catalog.checkpoints.add(first.run_id, _ckpt("8" * 64, step=3))
    assert not created2 and again.id == second.id
    odd = dataclasses.replace(_ckpt("7" * 64, step=None), label='say "ünïcode"\n', source_path="C:\\x",
                              meta={"resume_state": "ab", "nested": {"x": [1.5, None, True]}, "s": "é"})
    any_catalog.checkpoints.add(NewRun("other", "p2"), dataclasses.replace(odd, epoch=2.3333333333333335))
    records = any_catalog.checkpoints.list()
    # the fast JSON of `lsdb checkpoints --format json` parses to the records' dicts
    from lsdb.service.listing import checkpoints_json

    assert json.loads(checkpoints_json(any_catalog.checkpoints.list_rows())) == [r.to_dict() for r in records]
    assert json.loads(checkpoints_json(any_catalog.checkpoints.list_rows("by-id", "p", limit=1))) == [first.to_dict()]
    epochs = json.loads(checkpoints_json(any_catalog.checkpoints.list_rows(project="p2")))
    assert epochs[0]["epoch"] == 2.3333333333333335


def test_same_weights_in_two_runs_share_one_blob(any_catalog) -> None:  # type: ignore[no-untyped-def]
    any_catalog.checkpoints.add(NewRun("r1"), _ckpt("b" * 64))
    any_catalog.checkpoints.add(NewRun("r2"), _ckpt("b" * 64))
    assert len(any_catalog.checkpoints.list()) == 2
    assert len(any_catalog.blobs.list()) == 1


def test_trajectory_is_ordered_by_step(any_catalog) -> None:  # type: ignore[no-untyped-def]
    for step, d in [(30, "c"), (10, "d"), (20, "e")]:
        any_catalog.checkpoints.add(NewRun("traj"), _ckpt(d * 64, step=step))
    assert [c.step for c in any_catalog.checkpoints.list("traj")] == [10, 20, 30]


def test_run_spec_conflict_is_refused(any_catalog) -> None:  # type: ignore[no-untyped-def]
    any_catalog.runs.add(NewRun("r", model_spec={"name": "mlp", "kwargs": {}}))
    with pytest.raises(BadInput, match="already has model spec"):
        any_catalog.runs.add(NewRun("r", model_spec={"name": "resnet", "kwargs": {}}))


def test_run_params_tags_and_lookup(any_catalog) -> None:  # type: ignore[no-untyped-def]
    any_catalog.runs.add(NewRun("r", project="p", params={"lr": 0.1, "opt": "sgd"}, tags={"who": "me"}))
    rec = any_catalog.runs.get("r", "p")
    assert rec.params == {"lr": 0.1, "opt": "sgd"} and rec.tags == {"who": "me"}
    with pytest.raises(NotFound):
        any_catalog.runs.get("nope")
    with pytest.raises(NotFound):
        any_catalog.checkpoints.get(12345)


def test_ambiguous_run_name_needs_project(any_catalog) -> None:  # type: ignore[no-untyped-def]
    any_catalog.runs.add(NewRun("same", project="a"))
    any_catalog.runs.add(NewRun("same", project="b"))
    with pytest.raises(BadInput, match="--project"):
        any_catalog.runs.get("same")


def test_metric_summaries_track_last_min_max(any_catalog) -> None:  # type: ignore[no-untyped-def]
    run = any_catalog.runs.add(NewRun("m"))
    any_catalog.metrics.add(run.id, [("loss", 1, 2.0), ("loss", 2, 1.0)])
    any_catalog.metrics.add(run.id, [("loss", 3, 1.5), ("acc", 3, 0.9)])
    rec = any_catalog.runs.get(run.id)
    assert rec.metrics == {"loss": 1.5, "acc": 0.9}
    assert [m.value for m in any_catalog.metrics.list(run.id, "loss")] == [2.0, 1.0, 1.5]


def test_db_clock_is_epoch_ms(any_catalog) -> None:  # type: ignore[no-untyped-def]
    import time

    assert abs(any_catalog.db.now_ms() - time.time() * 1000) < 60_000
