"""`interpolate` against plain forward passes at the interpolated weights (Goodfellow et al. 2015, §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lsdb_surfaces.interpolate import INTERPOLATE, InterpolateParams, alpha_grid

from lsdb.analyses.contract import parse_params
from lsdb.errors import BadInput
from lsdb.landscape import barrier
from tests.plugins.surfaces_factories import (
    BN_MLP,
    LINEAR,
    TEACHER,
    digits_trajectory,
    make_checkpoint,
    make_context,
    make_state,
    reference_loss,
)


def _ends() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    states = digits_trajectory()
    return states[0][1], states[-1][1]


def _run(start, end, ctx=None, **params):  # type: ignore[no-untyped-def]
    inputs = {"start": [make_checkpoint(start, id=1)], "end": [make_checkpoint(end, id=2)]}
    return INTERPOLATE.run(ctx or make_context(), inputs, InterpolateParams(**params))


def test_end_points_equal_each_checkpoints_loss_by_direct_forward_pass() -> None:
    start, end = _ends()
    out = _run(start, end)
    alpha = out.arrays["alpha"]
    assert len(alpha) == 41 and alpha[0] == -0.5 and alpha[-1] == 1.5
    i0, i1 = int(np.flatnonzero(alpha == 0.0)[0]), int(np.flatnonzero(alpha == 1.0)[0])
    for split in ("train", "test"):
        for state, i, end_name in ((start, i0, "start"), (end, i1, "end")):
            loss, acc = reference_loss(state, split)
            assert out.arrays[f"{split}_loss"][i] == pytest.approx(loss, rel=1e-10)
            assert out.arrays[f"{split}_acc"][i] == pytest.approx(acc, abs=1e-12)
            assert out.scalars[f"{end_name}_{split}_loss"] == pytest.approx(loss, rel=1e-10)
            assert out.scalars[f"{end_name}_{split}_acc"] == pytest.approx(acc, abs=1e-12)
    assert out.scalars["loss_barrier"] >= 0.0 and out.scalars["test_loss_barrier"] >= 0.0


def test_interior_points_and_barrier_match_direct_forward_passes() -> None:
    start, end = _ends()
    out = _run(start, end, alpha_min=0.0, alpha_max=1.0, steps=5, splits=("train",))
    assert set(out.arrays) == {"alpha", "train_loss", "train_acc"}
    expected = []
    for a in (0.0, 0.25, 0.5, 0.75, 1.0):
        mixed = {k: (1 - a) * start[k].double() + a * end[k].double() for k in start}
        expected.append(reference_loss(mixed)[0])
    np.testing.assert_allclose(out.arrays["train_loss"], expected, rtol=1e-10)
    line = [(1 - a) * expected[0] + a * expected[-1] for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    gaps = np.subtract(expected, line)
    assert out.scalars["loss_barrier"] == pytest.approx(max(gaps), abs=1e-10)
    assert out.scalars["barrier_alpha"] == [0.0, 0.25, 0.5, 0.75, 1.0][int(np.argmax(gaps))]
    assert "test_loss_barrier" not in out.scalars


def test_identical_checkpoints_have_zero_barrier() -> None:
    start, _ = _ends()
    out = _run(start, start, steps=9)
    assert np.ptp(out.arrays["train_loss"]) == 0.0
    assert out.scalars["loss_barrier"] == pytest.approx(0.0, abs=1e-12)
    assert out.scalars["error_barrier"] == pytest.approx(0.0, abs=1e-12)


def test_zero_and_one_are_inserted_when_the_grid_misses_them() -> None:
    alphas = alpha_grid(-0.3, 1.3, 4)
    assert len(alphas) == 6 and 0.0 in alphas and 1.0 in alphas and np.all(np.diff(alphas) > 0)
    snapped = alpha_grid(-0.5, 1.5, 41)
    assert len(snapped) == 41 and snapped[10] == 0.0 and snapped[30] == 1.0
    assert 0.0 not in alpha_grid(0.2, 0.8, 4)


def test_barrier_is_undefined_without_both_end_points() -> None:
    assert barrier(np.array([0.2, 0.5, 0.8]), np.array([1.0, 2.0, 1.0])) is None
    gap, where = barrier(np.array([0.0, 0.5, 1.0]), np.array([1.0, 3.0, 2.0]))  # type: ignore[misc]
    assert (gap, where) == (1.5, 0.5)
    start, end = _ends()
    out = _run(start, end, alpha_min=0.2, alpha_max=0.8, steps=3, splits=("test",))
    assert not any("barrier" in k or k.startswith(("start_", "end_")) for k in out.scalars)


def test_regression_has_nan_accuracy_and_no_accuracy_scalars() -> None:
    ctx = make_context(model=LINEAR, dataset=TEACHER, loss="mse")
    start, end = make_state(LINEAR, TEACHER, seed=0), make_state(LINEAR, TEACHER, seed=1)
    out = _run(start, end, ctx, steps=5)
    assert np.isnan(out.arrays["train_acc"]).all() and np.isnan(out.arrays["test_acc"]).all()
    assert not any("acc" in k or "error" in k for k in out.scalars)
    loss, _ = reference_loss(end, "test", LINEAR, TEACHER, "mse")
    assert out.scalars["end_test_loss"] == pytest.approx(loss, rel=1e-10)
    # MSE of a linear model is quadratic in α, so it never rises above the chord: the barrier is 0.
    assert out.scalars["loss_barrier"] == pytest.approx(0.0, abs=1e-12)


def _bn_states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    states = []
    for seed in (0, 1):
        state = make_state(BN_MLP, seed=seed)
        state["2.running_mean"] = torch.randn(8, generator=torch.Generator().manual_seed(seed)) * 0.3
        state["2.running_var"] = 1.0 + torch.rand(8, generator=torch.Generator().manual_seed(seed + 10))
        states.append(state)
    return states[0], states[1]


def test_buffers_are_interpolated_only_with_include_buffers() -> None:
    start, end = _bn_states()
    ctx = make_context(model=BN_MLP)
    with_buffers = _run(start, end, ctx, alpha_min=0.0, alpha_max=1.0, steps=2, splits=("train",))
    assert with_buffers.scalars["end_train_loss"] == pytest.approx(reference_loss(end, model=BN_MLP)[0], rel=1e-10)
    without = _run(start, end, ctx, alpha_min=0.0, alpha_max=1.0, steps=2, splits=("train",), include_buffers=False)
    mixed = {**end, "2.running_mean": start["2.running_mean"], "2.running_var": start["2.running_var"]}
    assert without.scalars["end_train_loss"] == pytest.approx(reference_loss(mixed, model=BN_MLP)[0], rel=1e-10)
    assert without.scalars["end_train_loss"] != pytest.approx(with_buffers.scalars["end_train_loss"], rel=1e-6)
    recomputed = _run(start, end, ctx, alpha_min=0.0, alpha_max=1.0, steps=2, splits=("train",), bn="recompute")
    assert math.isfinite(recomputed.scalars["end_train_loss"])


def test_params_parse_from_strings_and_reject_bad_values() -> None:
    params = parse_params(INTERPOLATE, {"splits": "test", "steps": "3", "bn": "recompute"})
    assert params == InterpolateParams(splits=("test",), steps=3, bn="recompute")
    with pytest.raises(BadInput, match="alpha_min"):
        parse_params(INTERPOLATE, {"alpha_min": "2"})
    with pytest.raises(BadInput, match="splits"):
        parse_params(INTERPOLATE, {"splits": "[train,valid]"})
    with pytest.raises(BadInput, match="steps"):
        parse_params(INTERPOLATE, {"steps": "1"})
    with pytest.raises(BadInput, match="start"):
        INTERPOLATE.run(make_context(), {"end": []}, InterpolateParams())


def test_a_subset_gives_each_alphas_mean_and_standard_error_over_the_seeds_examples() -> None:
    """subset=N: the loss at each α is the mean over the seed's N examples, with the standard error of that mean
    (finite population correction), both recomputed here from per-example losses of plain forward passes."""
    from lsdb.data.registry import load_dataset
    from lsdb.models.registry import build_model
    from tests.plugins.surfaces_factories import DIGITS, MLP

    start, end = _ends()
    n = 50
    out = _run(start, end, alpha_min=0.0, alpha_max=1.0, steps=3, splits=("train",), subset=n)
    assert set(out.arrays) == {"alpha", "train_loss", "train_acc", "train_loss_se"}
    data = load_dataset(DIGITS)
    x, y = data.split("train")
    picked = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n].sort().values  # seed 0's subset
    net = build_model(MLP, data.input_shape, data.num_classes).double().eval()
    for i, a in enumerate(out.arrays["alpha"]):
        net.load_state_dict({k: (1 - a) * start[k].double() + a * end[k].double() for k in start})
        with torch.no_grad():
            per_example = torch.nn.functional.cross_entropy(net(x[picked].double()), y[picked], reduction="none")
        se = float(per_example.std()) / math.sqrt(n) * math.sqrt(1 - n / len(x))
        assert out.arrays["train_loss"][i] == pytest.approx(float(per_example.mean()), rel=1e-10)
        assert out.arrays["train_loss_se"][i] == pytest.approx(se, rel=1e-8)
    whole = _run(start, end, alpha_min=0.0, alpha_max=1.0, steps=3, splits=("train",))
    assert "train_loss_se" not in whole.arrays  # the whole split: an exact value, no estimate


def test_subset_at_its_default_leaves_the_stored_params_and_key_unchanged() -> None:
    from lsdb.analyses.contract import params_to_dict

    assert "subset" not in params_to_dict(InterpolateParams())
    assert params_to_dict(InterpolateParams(subset=8))["subset"] == 8
