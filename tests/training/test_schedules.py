"""Learning-rate schedules: closed forms, spec checking, and schedules in real training runs."""

from __future__ import annotations

import math
import re

import pytest

from lsdb.landscape.schedules import cosine, garipov, linear, step
from lsdb.training import train_run
from lsdb.training.schedules import canonical_schedule, lr_at

from .conftest import SMALL_MLP, assert_same_tensors, final_tensors


def test_factors_follow_their_closed_forms() -> None:
    c = cosine(final=0.1)
    assert (c(0.0, 0), c(0.5, 0), c(1.0, 0)) == pytest.approx((1.0, 0.55, 0.1))
    assert c(0.25, 0) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert linear(final=0.2)(0.25, 0) == pytest.approx(0.8)
    s = step(milestones=[5, 2], gamma=0.5)
    assert [s(0, e) for e in (0, 1.9, 2, 4.99, 5, 9)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    g = garipov(final=0.01)
    assert [g(t, 0) for t in (0.0, 0.5, 0.7, 0.9, 0.95)] == pytest.approx([1, 1, 0.505, 0.01, 0.01])
    rate = lr_at("cosine", 0.1, total_steps=100, steps_per_epoch=10)
    assert (rate(0), rate(50), rate(100)) == pytest.approx((0.1, 0.05, 0.0))
    assert lr_at("step:milestones=[3]", 0.2, 100, 10)(30) == pytest.approx(0.02)


def test_specs_are_checked_and_written_canonically() -> None:
    assert canonical_schedule("cosine") == "cosine"
    assert canonical_schedule("step:milestones=[5,2],gamma=0.5") == "step:gamma=0.5,milestones=[5,2]"
    for bad, message in (("cosinus", "unknown lr schedule 'cosinus'; available: constant, cosine"),
                         ("os:getcwd", "unknown lr schedule"),
                         ("linear:final=-1", "must be in [0, 1]"),
                         ("cosine:start=1", "unknown argument 'start'; accepted: final"),
                         ("step:milestones=[-1]", "milestones must be epochs >= 0")):
        with pytest.raises(ValueError, match=re.escape(message)):
            canonical_schedule(bad)


def test_a_schedule_that_stays_at_one_is_the_constant_run_bit_for_bit(catalog) -> None:  # type: ignore[no-untyped-def]
    train_run(catalog, "flat", model=SMALL_MLP, dataset="digits", config={"epochs": 2})
    run = train_run(catalog, "one", model=SMALL_MLP, dataset="digits",
                    config={"epochs": 2, "schedule": "cosine:final=1.0"}).run
    assert run.params["schedule"] == "cosine:final=1.0" and "schedule" not in catalog.runs.get("flat").params
    assert_same_tensors(final_tensors(catalog, "flat"), final_tensors(catalog, "one"))


def test_a_zero_learning_rate_after_a_milestone_freezes_the_weights(catalog) -> None:  # type: ignore[no-untyped-def]
    result = train_run(catalog, "frozen", model=SMALL_MLP, dataset="digits",
                       config={"epochs": 3, "schedule": "step:milestones=[1],gamma=0.0"})
    # SGD moves the weights by lr times the momentum buffer: nothing once the lr is 0, so the saves
    # after epoch 1 hold epoch 1's weights and are that checkpoint (same weights, same run)
    assert [c.epoch for c in catalog.checkpoints.list("frozen")] == [0.0, 1.0]
    assert len(result.checkpoints) == 4 and len({c.id for c in result.checkpoints}) == 2
    moving = train_run(catalog, "moving", model=SMALL_MLP, dataset="digits",
                       config={"epochs": 3, "schedule": "step:milestones=[1],gamma=0.5"})
    assert len({c.id for c in moving.checkpoints}) == 4  # a non-zero rate keeps moving


def test_resume_keeps_the_schedule_and_rejoins_the_uninterrupted_run(catalog) -> None:  # type: ignore[no-untyped-def]
    spec = "step:milestones=[1,2],gamma=0.3"
    train_run(catalog, "straight", model=SMALL_MLP, dataset="digits", config={"epochs": 3, "schedule": spec})
    train_run(catalog, "split", model=SMALL_MLP, dataset="digits", config={"epochs": 2, "schedule": spec})
    train_run(catalog, "split", config={"epochs": 3}, resume=True)
    assert_same_tensors(final_tensors(catalog, "straight"), final_tensors(catalog, "split"))
    from lsdb.errors import BadInput

    with pytest.raises(BadInput, match="trained with schedule=step:gamma=0.3,milestones=\\[1, ?2\\]"):
        train_run(catalog, "split", config={"epochs": 4, "schedule": "cosine"}, resume=True)
