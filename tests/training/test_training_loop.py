"""`lsdb.landscape.training.train`: the pure loop, without a catalog."""

from __future__ import annotations

import copy

import pytest
import torch

from lsdb.checkpoints import tensor_digest
from lsdb.landscape.training import DivergedError, TrainConfig, TrainState, train
from lsdb.models import build_model

from .conftest import SMALL_MLP, assert_same_tensors


def run_loop(digits, config: TrainConfig, initial: TrainState | None = None, model=None, **callbacks):  # type: ignore[no-untyped-def]
    saved: list[TrainState] = []

    def on_save(state: TrainState) -> None:
        saved.append(copy.deepcopy(state))

    net = (
        model if model is not None else build_model(SMALL_MLP, digits.input_shape, digits.num_classes, seed=config.seed)
    )
    summary = train(net, digits.train, digits.test, config, "cpu", on_save=on_save, initial=initial, **callbacks)
    return net, summary, saved


def test_same_seed_same_checkpoints_and_global_rng_untouched(digits) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(epochs=2, seed=3)
    before = torch.get_rng_state()
    _, _, first = run_loop(digits, config)
    assert torch.equal(before, torch.get_rng_state())
    _, _, second = run_loop(digits, config)
    assert [tensor_digest(s.model) for s in first] == [tensor_digest(s.model) for s in second]
    _, _, other = run_loop(digits, TrainConfig(epochs=2, seed=4))
    assert tensor_digest(other[-1].model) != tensor_digest(first[-1].model)


def test_snapshots_at_init_every_n_steps_and_end(digits) -> None:  # type: ignore[no-untyped-def]
    epochs: list[tuple[int, int]] = []
    config = TrainConfig(epochs=2, save_every=10, save_unit="steps")
    _, summary, saved = run_loop(digits, config, on_epoch=lambda m, e, s: epochs.append((e, s)))
    assert [s.step for s in saved] == [0, 10, 20, 30, 40, 46]
    assert saved[1].epochs_done == pytest.approx(10 / 23)
    assert epochs == [(0, 0), (1, 23), (2, 46)]
    assert summary.step == 46 and summary.saves == 6 and not summary.stopped
    assert set(summary.metrics) == {"train_loss", "train_acc", "test_loss", "test_acc"}


def test_nan_loss_raises_with_the_step_and_saves_nothing_after(digits) -> None:  # type: ignore[no-untyped-def]
    schedule = lambda step: 0.05 if step < 3 else float("nan")  # noqa: E731 - step 4 poisons the weights
    calls: list[int] = []
    config = TrainConfig(epochs=1, save_every=1, save_unit="steps", lr_schedule=schedule)
    with pytest.raises(DivergedError) as info:
        run_loop(digits, config, on_step=lambda step, e, loss: calls.append(step))
    assert info.value.step == 5 and "loss is nan at step 5" in str(info.value)


def test_stop_and_resume_mid_epoch_with_dropout_is_exact(digits) -> None:  # type: ignore[no-untyped-def]
    config = TrainConfig(epochs=2, seed=1)
    spec = "mlp:widths=[16],dropout=0.3"
    straight, _, _ = run_loop(digits, config, model=build_model(spec, digits.input_shape, 10, seed=1))
    steps = iter(range(10_000))
    _, summary, saved = run_loop(
        digits, config, model=build_model(spec, digits.input_shape, 10, seed=1), should_stop=lambda: next(steps) == 30
    )
    assert summary.stopped and saved[-1].step == 31 and saved[-1].batch == 8
    resumed = build_model(spec, digits.input_shape, 10, seed=99)
    run_loop(digits, config, initial=saved[-1], model=resumed)
    assert_same_tensors(straight.state_dict(), resumed.state_dict())


def test_invalid_settings_are_one_line_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; available: sgd, adam"):
        TrainConfig(optimizer="rmsprop").check()
    with pytest.raises(ValueError, match="save unit"):
        TrainConfig(save_unit="hours").check()


def test_adam_and_mse_train(digits) -> None:  # type: ignore[no-untyped-def]
    from lsdb.data import load_dataset

    data = load_dataset("synthetic:kind=teacher,n=200,dim=4")
    net = build_model("mlp:widths=[8]", data.input_shape, data.num_classes, seed=0)
    summary = train(net, data.train, data.test, TrainConfig(optimizer="adam", lr=0.01, epochs=3, loss="mse"), "cpu")
    assert set(summary.metrics) == {"train_loss", "test_loss"}
    first = train(
        build_model("mlp:widths=[8]", data.input_shape, 1, seed=0),
        data.train,
        data.test,
        TrainConfig(optimizer="adam", lr=0.01, epochs=0, loss="mse"),
        "cpu",
    )
    assert summary.metrics["train_loss"] < first.metrics["train_loss"]
