"""Grids of coefficients and surfaces evaluated on them: the centre is θ0 exactly."""

from __future__ import annotations

import torch

from lsdb.data import Dataset
from lsdb.landscape import (
    Evaluator,
    ParamLayout,
    evaluate_grid,
    grid_axis,
    grid_coefficients,
    normalize_direction,
    random_direction,
)
from tests.landscape.conftest import make_model


def test_symmetric_odd_axis_has_an_exact_zero_centre() -> None:
    for num in (3, 21, 41, 51, 101):
        axis = grid_axis(-1.0, 1.0, num)
        assert axis.dtype == torch.float64 and axis[num // 2].item() == 0.0
        assert axis[0] == -1.0 and axis[-1] == 1.0
    assert grid_axis(-0.3, 0.9, 5)[1].item() == 0.0  # snapped wherever 0 falls on the grid


def test_grid_coefficients_are_row_major() -> None:
    xs, ys = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([10.0, 20.0])
    coefs = grid_coefficients(xs, ys)
    assert coefs.shape == (6, 2)
    assert coefs[1].tolist() == [0.0, 20.0] and coefs[2].tolist() == [1.0, 10.0]
    assert grid_coefficients([1.0, 2.0]).tolist() == [[1.0], [2.0]]


def test_grid_centre_is_evaluated_and_equals_the_loss_at_theta0(digits: Dataset) -> None:
    x, y = digits.test
    model = make_model("mlp:widths=[32,32]", digits).float()
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    dirs = torch.stack([normalize_direction(random_direction(layout, seed=s), theta, layout) for s in (0, 1)])
    for strategy in ("per_point", "batched"):
        ev = Evaluator(model, x, y, strategy=strategy)  # type: ignore[arg-type]
        surface = evaluate_grid(ev, dirs, grid_axis(-1, 1, 5), grid_axis(-1, 1, 5))
        assert surface.loss.shape == (5, 5) and surface.accuracy is not None
        at_theta0 = Evaluator(model, x, y, strategy=strategy).at_points(theta.unsqueeze(0))  # type: ignore[arg-type]
        assert surface.loss[2, 2] == at_theta0.loss[0]
        assert surface.accuracy[2, 2] == at_theta0.accuracy[0]  # type: ignore[index]
        assert (surface.loss != surface.loss[2, 2]).sum() == 24


def test_one_dimensional_grid_has_one_value_per_step(digits: Dataset) -> None:
    x, y = digits.test[0][:40], digits.test[1][:40]
    model = make_model("mlp:widths=[8]", digits).float()
    layout = ParamLayout.from_module(model)
    d = random_direction(layout, seed=0).unsqueeze(0) * 0.1
    line = evaluate_grid(Evaluator(model, x, y, outputs="probs"), d, grid_axis(-2, 2, 9))
    assert line.loss.shape == (9,) and line.ys is None
    assert line.outputs is not None and line.outputs.shape == (9, 40, 10)


def test_bands_of_lines_equal_the_whole_grid_bit_for_bit_with_every_strategy(digits: Dataset) -> None:
    """What makes a fanned-out surface equal the inline one: line-aligned chunks of points."""
    x, y = digits.test
    model = make_model("mlp:widths=[32,32]", digits).float()
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    dirs = torch.stack([normalize_direction(random_direction(layout, seed=s), theta, layout) for s in (2, 3)])
    xs, ys = grid_axis(-1, 1, 13), grid_axis(-1, 1, 9)
    for strategy, budget in (("batched", 3_000_000), ("batched", 50_000_000), ("per_point", 50_000_000)):
        ev = Evaluator(model, x, y, strategy=strategy, memory_budget=budget, outputs="probs")  # type: ignore[arg-type]
        whole = evaluate_grid(ev, dirs, xs, ys)
        bands = [evaluate_grid(ev, dirs, xs, ys[a:b]) for a, b in ((0, 2), (2, 7), (7, 9))]
        assert torch.equal(torch.cat([b.loss for b in bands], dim=1), whole.loss), (strategy, budget)
        assert torch.equal(torch.cat([b.accuracy for b in bands], dim=1), whole.accuracy)  # type: ignore[misc]
        assert torch.equal(torch.cat([b.outputs for b in bands], dim=1), whole.outputs)  # type: ignore[misc]
        # and the layout is (x, y): the point (xs[i], ys[j]) is at [i, j]
        point = theta + xs[4].item() * dirs[0] + ys[6].item() * dirs[1]
        assert torch.allclose(ev.at_points(point.unsqueeze(0)).loss[0], whole.loss[4, 6], rtol=1e-5)
