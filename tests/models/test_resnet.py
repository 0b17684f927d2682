"""ResNet with and without shortcuts (He et al. 2016; Li et al. 2018's ResNet-noshort)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lsdb.errors import BadInput
from lsdb.models import build_model
from lsdb.models.resnet import BasicBlock, Shortcut


def count_shortcuts(model: nn.Module) -> int:
    return sum(isinstance(m, Shortcut) for m in model.modules())


@pytest.mark.parametrize(("depth", "n"), [(8, 1), (20, 3)])
def test_skip_true_has_one_shortcut_per_block_and_skip_false_none(depth: int, n: int) -> None:
    with_skips = build_model(f"resnet:depth={depth}", (3, 32, 32), 10)
    without = build_model(f"resnet:depth={depth},skip=false", (3, 32, 32), 10)
    assert count_shortcuts(with_skips) == with_skips.num_shortcuts == 3 * n
    assert count_shortcuts(without) == without.num_shortcuts == 0
    assert sum(isinstance(m, BasicBlock) for m in without.modules()) == 3 * n


def test_removing_shortcuts_changes_outputs_for_the_same_weights() -> None:
    with_skips = build_model("resnet:depth=8", (1, 8, 8), 10, seed=0).eval()
    without = build_model("resnet:depth=8,skip=false", (1, 8, 8), 10).eval()
    missing, unexpected = without.load_state_dict(with_skips.state_dict(), strict=False)
    assert not missing and all(".shortcut." in k for k in unexpected)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(with_skips(x), without(x))


@pytest.mark.parametrize("skip", [True, False])
def test_a_block_adds_its_input_only_with_a_shortcut(skip: bool) -> None:
    block = BasicBlock(4, 4, stride=1, skip=skip).eval()
    nn.init.zeros_(block.bn2.weight)  # the residual branch now outputs exactly 0
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        expected = torch.relu(x) if skip else torch.zeros_like(x)
        assert torch.equal(block(x), expected)


def test_depth_counts_weighted_layers_excluding_projections() -> None:
    model = build_model("resnet:depth=20", (3, 32, 32), 10)
    convs = [m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and ".shortcut." not in name]
    assert len(convs) + 1 == 20
    assert 0.26e6 < sum(p.numel() for p in model.parameters()) < 0.28e6  # He et al.: 0.27M


def test_k_widens_every_stage() -> None:
    model = build_model("resnet:depth=8,k=4", (3, 32, 32), 10)
    assert [
        model.layer1[0].conv1.out_channels,
        model.layer2[0].conv1.out_channels,
        model.layer3[0].conv1.out_channels,
    ] == [64, 128, 256]


def test_module_names_match_li_et_al() -> None:
    keys = set(build_model("resnet:depth=20", (3, 32, 32), 10).state_dict())
    assert {
        "conv1.weight",
        "bn1.weight",
        "layer1.0.conv2.weight",
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.running_var",
        "linear.weight",
    } <= keys


@pytest.mark.parametrize("depth", [21, 2, 0, 7])
def test_depth_must_be_6n_plus_2(depth: int) -> None:
    with pytest.raises(BadInput, match="6n\\+2"):
        build_model(f"resnet:depth={depth}", (3, 32, 32), 10)


def test_k_must_be_positive() -> None:
    with pytest.raises(BadInput, match="k must be"):
        build_model("resnet:k=0", (3, 32, 32), 10)
