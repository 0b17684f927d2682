"""Directions over the parameters only (what `surface` passes for a model with BatchNorm statistics) give the
same numbers, bit for bit, as the same directions padded with zeros over the buffers, which is what the
evaluator built before it stopped padding them (a padded copy cost J more parameter vectors at the peak)."""

from __future__ import annotations

import pytest
import torch

from lsdb.data import Dataset
from lsdb.landscape import Evaluator, ParamLayout, grid_axis, grid_coefficients, random_direction
from tests.landscape.conftest import make_model


@pytest.mark.parametrize("strategy", ["per_point", "batched"])
@pytest.mark.parametrize("given_theta", [False, True])
def test_directions_over_the_parameters_equal_zero_padded_ones_bit_for_bit(
        digits_image: Dataset, strategy: str, given_theta: bool) -> None:
    x, y = digits_image.test[0][:48].float(), digits_image.test[1][:48]
    model = make_model("resnet:depth=8", digits_image, warm_bn=digits_image.train[0][:64]).float()
    layout = ParamLayout.from_module(model, buffers=True)
    n = layout.n_params
    assert layout.numel > n  # BatchNorm running statistics follow the parameters
    dirs = torch.stack([random_direction(layout.parameters_only(), seed=s) * 0.05 for s in (1, 2)])
    padded = torch.cat([dirs, dirs.new_zeros(2, layout.numel - n)], dim=1)
    theta = None
    if given_theta:  # a centre with its own statistics: the points must carry them, not the model's
        theta = layout.flatten(model)
        theta[n:] *= 1.5
    coefs = grid_coefficients(grid_axis(-1.0, 1.0, 3), grid_axis(-1.0, 1.0, 3))
    ev = Evaluator(model, x, y, strategy=strategy, reuse_first_layer=True)  # type: ignore[arg-type]
    got, want = ev.along(dirs, coefs, theta), ev.along(padded, coefs, theta)
    assert torch.equal(got.loss, want.loss)
    assert got.accuracy is not None and want.accuracy is not None and torch.equal(got.accuracy, want.accuracy)
    if given_theta:  # the centre's statistics were used: a different loss from the model's own at (0, 0)
        own = ev.along(dirs, coefs)
        assert not torch.equal(own.loss[4], got.loss[4])
