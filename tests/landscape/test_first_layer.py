"""Reusing the first layer across points: same results as the plain path, and only where valid."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lsdb.data import Dataset
from lsdb.landscape import Evaluator, ParamLayout, grid_axis, grid_coefficients, normalize_direction, random_direction
from lsdb.landscape.first_layer import FirstLayerCache
from tests.landscape.conftest import make_model


def filter_plane(model: nn.Module) -> Tensor:
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    dtype = theta.dtype
    return torch.stack([normalize_direction(random_direction(layout, seed=s, dtype=dtype), theta, layout)
                        for s in (1, 2)])


@pytest.mark.parametrize(
    ("spec", "image", "bn"),
    [
        ("mlp:widths=[16,16]", False, "eval"),
        ("simple_cnn:channels=[8,8]", True, "eval"),
        ("resnet:depth=8", True, "eval"),
        ("vgg:width=0.125", True, "recompute"),
    ],
)
def test_first_layer_reuse_matches_the_plain_path(spec: str, image: bool, bn: str, digits: Dataset,
                                                  digits_image: Dataset) -> None:
    data = digits_image if image else digits
    x, y = data.test[0][:32].double(), data.test[1][:32]
    train_x = data.train[0][:64].double()
    model = make_model(spec, data, warm_bn=train_x)
    dirs = filter_plane(model)
    coefs = grid_coefficients(grid_axis(-1, 1, 2), grid_axis(-1, 1, 3))
    for strategy in ("per_point", "batched"):
        kwargs = {"dtype": torch.float64, "strategy": strategy, "outputs": "logits", "bn": bn, "train_x": train_x,
                  "bn_batch_size": 32}
        plain = Evaluator(model, x, y, reuse_first_layer=False, **kwargs).along(dirs, coefs)  # type: ignore[arg-type]
        reused = Evaluator(model, x, y, reuse_first_layer=True, **kwargs).along(dirs, coefs)  # type: ignore[arg-type]
        assert reused.reused_first_layer and not plain.reused_first_layer
        torch.testing.assert_close(reused.loss, plain.loss, rtol=1e-12, atol=0)
        torch.testing.assert_close(reused.outputs, plain.outputs, rtol=1e-10, atol=1e-12)


def test_reuse_in_float32_agrees_to_float_tolerance(digits: Dataset) -> None:
    x, y = digits.test
    model = make_model("mlp:widths=[64,64]", digits).float()
    dirs = filter_plane(model)
    coefs = grid_coefficients(grid_axis(-1, 1, 5), grid_axis(-1, 1, 5))
    plain = Evaluator(model, x, y, reuse_first_layer=False).along(dirs, coefs)
    reused = Evaluator(model, x, y).along(dirs, coefs)
    assert reused.reused_first_layer
    torch.testing.assert_close(reused.loss, plain.loss, rtol=1e-5, atol=0)


def test_first_layer_is_found_after_a_flatten_and_in_nested_modules(digits: Dataset, digits_image: Dataset) -> None:
    mlp = make_model("mlp:widths=[8]", digits)
    found = FirstLayerCache.find(mlp, digits.test[0][:2].double())
    assert found is not None and found.weight_name == "1.weight" and found.bias_name == "1.bias"
    resnet = make_model("resnet:depth=8", digits_image)
    found = FirstLayerCache.find(resnet, digits_image.test[0][:2].double())
    assert found is not None and found.weight_name == "conv1.weight" and found.bias_name is None


class Scaled(nn.Module):
    """Transforms its input before the first layer: nothing to reuse."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(2 * x)


class Twice(nn.Module):
    """Applies its first layer twice: nothing to reuse."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.fc(x)))


@pytest.mark.parametrize("model", [Scaled(), Twice(), nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2))])
def test_no_reuse_when_the_first_layer_does_not_see_the_raw_input_once(model: nn.Module) -> None:
    assert FirstLayerCache.find(model, torch.randn(3, 4)) is None
    ev = Evaluator(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), reuse_first_layer=True)
    p = ParamLayout.from_module(model).numel
    assert not ev.along(torch.randn(2, p), torch.ones(3, 2)).reused_first_layer


def test_auto_keeps_the_first_layer_out_of_fusion_only_where_reuse_can_be_chosen() -> None:
    """A first layer whose fan-in the rule refuses for any plane or line (simple_cnn's 1x3x3 conv) is
    fused like the others; a wide one (the MLP's 64 inputs) stays available for reuse."""
    from lsdb.landscape.evaluator import REUSE_MIN_FAN_IN_PER_TERM
    from lsdb.landscape.fusion import onednn_available
    from lsdb.models import build_model

    torch.manual_seed(0)
    x, y = torch.randn(512, 1, 8, 8), torch.randint(0, 10, (512,))  # enough work a pass for per-point passes
    cnn = Evaluator(build_model("simple_cnn", (1, 8, 8), 10, seed=0).eval(), x, y)
    assert cnn.strategy == "per_point"
    assert 9 < REUSE_MIN_FAN_IN_PER_TERM * 2 and cnn.first_layer is None
    explicit = Evaluator(build_model("simple_cnn", (1, 8, 8), 10, seed=0).eval(), x, y, reuse_first_layer=True)
    assert explicit.first_layer is not None  # asked for: kept
    mlp = Evaluator(build_model("mlp:widths=[32]", (64,), 10, seed=0).eval(), x.view(512, 64), y)
    assert mlp.first_layer is not None and mlp.first_layer.fan_in() >= REUSE_MIN_FAN_IN_PER_TERM * 2
    if onednn_available():  # the first convolution is fused too
        fused = [sum(type(m).__name__ == "FusedConv2d" for m in ev.fused.modules()) for ev in (cnn, explicit)
                 if ev.fused is not None]
        assert fused == [3, 2]  # all three convolutions; the first kept out when reuse is asked for
