"""`lsdb.record`: checkpoints and metrics from a user's own loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lsdb
from lsdb.errors import BadInput
from lsdb.models import build_model

from .conftest import SMALL_MLP, assert_same_tensors, checkpoint_tensors


def test_record_writes_checkpoints_and_metrics_and_completes(catalog, digits) -> None:  # type: ignore[no-untyped-def]
    model = build_model(SMALL_MLP, digits.input_shape, digits.num_classes, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = digits.train
    with lsdb.record(
        run="mine", model=SMALL_MLP, dataset="digits", params={"lr": 0.1}, tags={"who": "me"}, catalog=catalog
    ) as rec:
        assert catalog.runs.get("mine").status == "running"
        for step in range(1, 7):
            loss = F.cross_entropy(model(x[:64]), y[:64])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log("loss", loss, step)
            if step % 3 == 0:
                rec.checkpoint(model, step=step, epoch=step / 3, metrics={"train_loss": loss.item()})
    run = catalog.runs.get("mine")
    assert run.status == "complete" and run.params == {"lr": 0.1} and run.tags == {"who": "me"}
    ckpts = catalog.checkpoints.list("mine")
    assert [(c.step, c.epoch) for c in ckpts] == [(3, 1.0), (6, 2.0)]
    assert_same_tensors(checkpoint_tensors(catalog, ckpts[-1]), model.state_dict())
    assert [m.step for m in catalog.metrics.list(run.id, "loss")] == [1, 2, 3, 4, 5, 6]
    assert [m.step for m in catalog.metrics.list(run.id, "train_loss")] == [3, 6]


def test_an_exception_marks_the_run_incomplete_and_keeps_its_data(catalog, digits) -> None:  # type: ignore[no-untyped-def]
    model = build_model(SMALL_MLP, digits.input_shape, digits.num_classes, seed=0)
    with pytest.raises(RuntimeError, match="out of patience"):
        with lsdb.record(run="crash", model=SMALL_MLP, dataset="digits", catalog=catalog) as rec:
            rec.checkpoint(model.state_dict(), step=0)
            rec.log("loss", 2.3, 0)
            raise RuntimeError("out of patience")
    run = catalog.runs.get("crash")
    assert run.status == "incomplete" and run.n_checkpoints == 1
    assert [m.value for m in catalog.metrics.list(run.id, "loss")] == [2.3]


def test_tensors_that_do_not_fit_the_model_are_refused(catalog, digits) -> None:  # type: ignore[no-untyped-def]
    other = build_model("mlp:widths=[8]", digits.input_shape, digits.num_classes, seed=0)
    with pytest.raises(BadInput, match=r"tensor '1.weight' has shape \[8, 64\] but the run's model expects \[16, 64\]"):
        with lsdb.record(run="wrong", model=SMALL_MLP, dataset="digits", catalog=catalog) as rec:
            rec.checkpoint(other, step=0)
    assert catalog.runs.get("wrong").status == "incomplete" and catalog.checkpoints.list("wrong") == []


def test_bad_arguments_are_bad_input(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match="unknown model 'nope'"):
        with lsdb.record(run="r", model="nope", catalog=catalog):
            pass
    with lsdb.record(run="r", catalog=catalog) as rec:
        with pytest.raises(BadInput, match="step must be an int"):
            rec.log("loss", 1.0, 1.5)  # type: ignore[arg-type]
        with pytest.raises(BadInput, match="not a tensor"):
            rec.checkpoint({"w": [1, 2]}, step=0)
        with pytest.raises(BadInput, match="need a step"):
            rec.checkpoint({"w": torch.ones(2)}, metrics={"loss": 1.0})
