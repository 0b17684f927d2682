"""`lsdb.training.train_run`: runs, checkpoints, metrics, status, divergence and exact resume."""

from __future__ import annotations

import pytest

from lsdb.errors import BadInput
from lsdb.training import service, train_run

from .conftest import SMALL_MLP, assert_same_tensors, final_tensors


def make_run(catalog, name: str, **config):  # type: ignore[no-untyped-def]
    return train_run(catalog, name, model=SMALL_MLP, dataset="digits", config=config)


def test_records_checkpoints_metrics_params_and_completes(any_catalog) -> None:  # type: ignore[no-untyped-def]
    catalog = any_catalog  # SQLite here, and PostgreSQL where LSDB_TEST_POSTGRES_URL is set
    result = make_run(catalog, "r", epochs=2, lr=0.05, seed=7)
    run = catalog.runs.get("r")
    assert run.status == "complete" and result.run.status == "complete"
    assert run.model_spec == {"name": "mlp", "kwargs": {"widths": [16]}} and run.loss == "cross_entropy"
    assert {k: run.params[k] for k in ("lr", "batch_size", "epochs", "seed", "momentum")} == {
        "lr": 0.05,
        "batch_size": 64,
        "epochs": 2,
        "seed": 7,
        "momentum": 0.9,
    }
    assert run.params["optimizer"] == "sgd" and run.params["weight_decay"] == 0
    ckpts = catalog.checkpoints.list("r")
    assert [(c.step, c.epoch) for c in ckpts] == [(0, 0.0), (23, 1.0), (46, 2.0)]
    # first and last keep the training state; in between only when the last kept one is 10 s old
    assert [bool(c.meta and "resume_state" in c.meta) for c in ckpts] == [True, False, True]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert [m.step for m in catalog.metrics.list(run.id, key)] == [0, 23, 46]
    assert run.metrics["test_acc"] == pytest.approx(result.summary.metrics["test_acc"])
    assert len(result.checkpoints) == 3


def test_same_seed_gives_identical_checkpoints(catalog) -> None:  # type: ignore[no-untyped-def]
    make_run(catalog, "a", epochs=1)
    make_run(catalog, "b", epochs=1)
    digests = [[c.tensor_digest for c in catalog.checkpoints.list(r)] for r in ("a", "b")]
    assert digests[0] == digests[1]


def test_resume_continues_to_the_same_weights_as_one_run(catalog) -> None:  # type: ignore[no-untyped-def]
    make_run(catalog, "straight", epochs=4)
    make_run(catalog, "split", epochs=2)
    result = train_run(catalog, "split", config={"epochs": 4}, resume=True)
    assert result.resumed_from == 46 and result.run.status == "complete" and result.run.params["epochs"] == 4
    assert_same_tensors(final_tensors(catalog, "straight"), final_tensors(catalog, "split"))
    steps = [m.step for m in catalog.metrics.list(result.run.id, "train_loss")]
    assert steps == [0, 23, 46, 69, 92]


def test_every_checkpoint_keeps_its_state_when_the_interval_allows(catalog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(service, "RESUME_STATE_EVERY_S", 0.0)
    make_run(catalog, "all", epochs=2)
    assert all(c.meta and "resume_state" in c.meta for c in catalog.checkpoints.list("all"))


def test_resume_falls_back_to_the_latest_kept_state_and_rejoins_the_same_trajectory(catalog) -> None:  # type: ignore[no-untyped-def]
    """As after a crash between two kept states: the checkpoints after the latest kept state are
    recomputed bit for bit, found to exist (same weights, same run) and not duplicated."""
    from sqlalchemy import update

    from lsdb.catalog.models import CheckpointRow

    make_run(catalog, "straight", epochs=3)
    make_run(catalog, "crashed", epochs=2)
    run_id = catalog.runs.get("crashed").id
    with catalog.db.engine.begin() as conn:  # the last kept state never made it: only step 0 keeps one
        conn.execute(update(CheckpointRow).where(CheckpointRow.run_id == run_id, CheckpointRow.step == 46)
                     .values(meta=None))
    before = {c.step: c.id for c in catalog.checkpoints.list("crashed")}
    result = train_run(catalog, "crashed", config={"epochs": 3}, resume=True)
    assert result.resumed_from == 0
    after = catalog.checkpoints.list("crashed")
    assert [c.step for c in after] == [0, 23, 46, 69]
    assert {c.step: c.id for c in after if c.step in before} == before  # the same rows, not duplicates
    assert_same_tensors(final_tensors(catalog, "straight"), final_tensors(catalog, "crashed"))


def test_an_interrupted_run_is_incomplete_and_resumes_exactly(catalog) -> None:  # type: ignore[no-untyped-def]
    class Boom(Exception):
        pass

    def progress(p) -> None:  # type: ignore[no-untyped-def]
        if p.step >= 30:
            raise Boom

    make_run(catalog, "straight", epochs=3, seed=2)
    with pytest.raises(Boom):
        train_run(catalog, "cut", model=SMALL_MLP, dataset="digits", config={"epochs": 3, "seed": 2}, progress=progress)
    assert catalog.runs.get("cut").status == "incomplete"
    assert [c.step for c in catalog.checkpoints.list("cut")] == [0, 23]
    train_run(catalog, "cut", resume=True)
    assert catalog.runs.get("cut").status == "complete"
    assert_same_tensors(final_tensors(catalog, "straight"), final_tensors(catalog, "cut"))


def test_a_requested_stop_saves_the_step_and_resumes_exactly(catalog) -> None:  # type: ignore[no-untyped-def]
    make_run(catalog, "straight", epochs=2)
    calls = iter(range(1000))
    result = train_run(
        catalog, "stop", model=SMALL_MLP, dataset="digits", config={"epochs": 2}, should_stop=lambda: next(calls) == 10
    )
    assert result.summary.stopped and result.run.status == "incomplete"
    assert catalog.checkpoints.list("stop")[-1].step == 11
    train_run(catalog, "stop", resume=True)
    assert_same_tensors(final_tensors(catalog, "straight"), final_tensors(catalog, "stop"))


def test_divergence_is_one_line_names_the_step_and_keeps_checkpoints(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput) as info:
        make_run(catalog, "nan", epochs=2, lr=1e6, save_every=2, save_unit="steps")
    message = str(info.value)
    assert message.startswith("training diverged: loss is ") and "\n" not in message
    nan_step = int(message.split(" at step ")[1].split(";")[0])
    kept = int(message.rsplit("up to step ", 1)[1].split(" ")[0])
    steps = [c.step for c in catalog.checkpoints.list("nan")]
    assert steps == list(range(0, kept + 1, 2)) and kept < nan_step
    assert catalog.runs.get("nan").status == "incomplete"


def test_resume_refusals(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match="run 'ghost' does not exist in project 'default'; nothing to resume"):
        train_run(catalog, "ghost", resume=True)
    make_run(catalog, "r", epochs=1)
    with pytest.raises(BadInput, match="already exists .* pass --resume"):
        make_run(catalog, "r", epochs=1)
    with pytest.raises(BadInput, match="already trained 1 epochs"):
        train_run(catalog, "r", resume=True)
    with pytest.raises(BadInput, match="trained with lr=0.1; --resume continues with the same hyperparameters"):
        train_run(catalog, "r", config={"epochs": 2, "lr": 0.5}, resume=True)


def test_bad_settings_and_mismatched_loss_are_bad_input(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match="unknown training setting 'lrate'; accepted: optimizer, lr"):
        make_run(catalog, "x", lrate=0.1)
    with pytest.raises(BadInput, match="batch size must be at least 1"):
        make_run(catalog, "x", batch_size=0)
    with pytest.raises(BadInput, match="loss mse needs a regression dataset"):
        make_run(catalog, "x", loss="mse")
    with pytest.raises(BadInput, match="device 'tpu'"):
        train_run(catalog, "x", model=SMALL_MLP, dataset="digits", device="tpu")
    assert catalog.runs.list() == []


def test_resume_without_the_saved_state_says_what_is_missing(catalog) -> None:  # type: ignore[no-untyped-def]
    from lsdb.errors import StoreError

    make_run(catalog, "r", epochs=1)
    digest = catalog.checkpoints.list("r")[-1].meta["resume_state"]
    catalog.objects.remove(digest)
    with pytest.raises(StoreError, match=r"cannot resume run 'r' from step 23: its training state .* is missing"):
        train_run(catalog, "r", config={"epochs": 2}, resume=True)


def test_gc_keeps_the_resume_state_of_checkpoints(catalog) -> None:  # type: ignore[no-untyped-def]
    from lsdb.maintenance import gc

    make_run(catalog, "r", epochs=1)
    gc(catalog, older_than_s=0)
    train_run(catalog, "r", config={"epochs": 2}, resume=True)


def test_eval_every_thins_the_metrics_and_never_changes_the_trajectory(catalog) -> None:  # type: ignore[no-untyped-def]
    make_run(catalog, "every", epochs=4)
    make_run(catalog, "second", epochs=4, eval_every=2)
    make_run(catalog, "ends", epochs=4, eval_every=0)
    for name, steps in (("every", [0, 23, 46, 69, 92]), ("second", [0, 46, 92]), ("ends", [0, 92])):
        run = catalog.runs.get(name)
        assert [m.step for m in catalog.metrics.list(run.id, "test_loss")] == steps, name
        assert_same_tensors(final_tensors(catalog, "every"), final_tensors(catalog, name))
    ends, every = catalog.runs.get("ends"), catalog.runs.get("every")
    assert ends.metrics["test_loss"] == pytest.approx(every.metrics["test_loss"])
    with pytest.raises(BadInput, match="eval every must be >= 0"):
        make_run(catalog, "bad", epochs=1, eval_every=-1)
