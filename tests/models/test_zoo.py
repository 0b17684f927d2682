"""Every zoo model builds for every dataset it fits and maps a batch to (batch, num_classes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lsdb.data import Dataset, load_dataset
from lsdb.errors import BadInput
from lsdb.models import build_model

CONV_SPECS = [
    "simple_cnn",
    "simple_cnn:channels=[4,8,8],dropout=0.1",
    "resnet:depth=8",
    "resnet:depth=8,skip=false",
    "resnet:depth=8,k=2",
    "vgg:width=0.125",
    "vgg:width=0.125,batchnorm=false",
]


def forward_shape(model: nn.Module, data: Dataset) -> tuple[int, ...]:
    x = data.train[0][:4]
    with torch.no_grad():
        return tuple(model.eval()(x).shape)


@pytest.mark.parametrize("spec", ["mlp", "mlp:widths=[16],activation=tanh,dropout=0.5", "mlp:widths=[]"])
@pytest.mark.parametrize(
    "dataset", ["digits", "digits:image=true", "synthetic:dim=5,classes=3", "synthetic:kind=teacher,dim=3"]
)
def test_mlp_builds_for_flat_and_image_data(spec: str, dataset: str) -> None:
    data = load_dataset(dataset)
    model = build_model(spec, data.input_shape, data.num_classes)
    assert forward_shape(model, data) == (4, data.num_classes)


@pytest.mark.parametrize("spec", CONV_SPECS)
def test_conv_nets_build_for_digit_images(spec: str, digits_image: Dataset) -> None:
    model = build_model(spec, digits_image.input_shape, digits_image.num_classes)
    assert forward_shape(model, digits_image) == (4, 10)


@pytest.mark.parametrize("spec", [*CONV_SPECS, "resnet", "vgg"])
def test_conv_nets_build_for_cifar_shaped_images(spec: str, cifar_shaped: Dataset) -> None:
    model = build_model(spec, cifar_shaped.input_shape, cifar_shaped.num_classes)
    assert forward_shape(model, cifar_shaped) == (4, 10)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 2, 3), (2, 5, 7)])
@pytest.mark.parametrize("spec", ["simple_cnn", "resnet:depth=8", "vgg:width=0.125"])
def test_conv_nets_handle_small_and_odd_images(spec: str, shape: tuple[int, ...]) -> None:
    model = build_model(spec, shape, 3).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 3)


@pytest.mark.parametrize("spec", ["simple_cnn", "resnet", "vgg"])
def test_conv_nets_refuse_flat_input_naming_the_image_option(spec: str, digits_flat: Dataset) -> None:
    with pytest.raises(BadInput, match="digits:image=true"):
        build_model(spec, digits_flat.input_shape, digits_flat.num_classes)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid", "elu"])
def test_mlp_uses_the_named_activation(activation: str) -> None:
    model = build_model(f"mlp:activation={activation},widths=[3]", (4,), 2)
    assert type(model[2]).__name__.lower() == activation


def test_mlp_rejects_unknown_activation_listing_known_ones() -> None:
    with pytest.raises(BadInput, match="unknown activation 'swish'.*relu, tanh, gelu, sigmoid, elu"):
        build_model("mlp:activation=swish,widths=[]", (4,), 2)


def test_mlp_layers_follow_widths() -> None:
    model = build_model("mlp:widths=[7,5]", (2, 3), 4)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 7), (7, 5), (5, 4)]


def test_vgg9_has_seven_convs_and_two_linears_named_as_li_et_al() -> None:
    model = build_model("vgg", (3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256]
    assert len(linears) == 2 and linears[0].in_features == 256 * 4 * 4
    keys = set(model.state_dict())
    assert {"features.0.weight", "features.1.running_mean", "fc.0.weight", "fc.1.weight", "classifier.weight"} <= keys


def test_vgg_width_scales_channels_and_batchnorm_is_optional() -> None:
    model = build_model("vgg:width=0.25,batchnorm=false", (1, 8, 8), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64, 64]
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())


def test_simple_cnn_pools_only_while_the_map_allows() -> None:
    small = build_model("simple_cnn", (1, 8, 8), 10)
    tiny = build_model("simple_cnn", (1, 2, 2), 10)
    assert sum(isinstance(m, nn.MaxPool2d) for m in small.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool2d) for m in tiny.modules()) == 1


def test_build_model_with_seed_is_reproducible_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("mlp:widths=[8]", (4,), 2, seed=7)
    b = build_model("mlp:widths=[8]", (4,), 2, seed=7)
    c = build_model("mlp:widths=[8]", (4,), 2, seed=8)
    assert torch.rand(1) == expected
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[1].weight, c[1].weight)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5])
def test_models_refuse_a_bad_class_count(num_classes: int) -> None:
    with pytest.raises(BadInput, match="num_classes"):
        build_model("mlp", (4,), num_classes)
