"""Permutation groups derived from the traced graph: function preservation on every zoo architecture,
the group structure of residual networks, and one-line refusals for what the rules do not cover."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lsdb.landscape.permutations import (
    apply_permutation,
    expand,
    invert,
    permutation_spec,
    random_permutation,
)
from lsdb.models import build_model
from tests.alignment.factories import ZOO, Concat, DataDependent, zoo_model


@pytest.mark.parametrize(("spec", "shape"), ZOO)
def test_a_random_permutation_preserves_the_function(spec: str, shape: tuple[int, ...]) -> None:
    model = zoo_model(spec, shape)
    x = torch.randn(6, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    groups = permutation_spec(model, x)
    perms = random_permutation(groups, torch.Generator().manual_seed(2))
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms.values())
    permuted = apply_permutation(groups, perms, model.state_dict())
    other = build_model(spec, shape, 10).double().eval()
    other.load_state_dict(permuted)
    assert any(not torch.equal(permuted[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x), rtol=1e-12, atol=1e-12)
    back = apply_permutation(groups, {k: invert(v) for k, v in perms.items()}, permuted)
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


def test_a_residual_stream_shares_one_permutation_across_blocks() -> None:
    x = torch.randn(2, 3, 8, 8)
    with_skips = permutation_spec(build_model("resnet:depth=20", (3, 8, 8), 10, seed=0), x)
    without = permutation_spec(build_model("resnet:depth=20,skip=false", (3, 8, 8), 10, seed=0), x)
    assert len(without.groups) == 19  # every conv but none of the head: 1 + 18
    assert len(with_skips.groups) == 12  # 3 streams (one per stage) + 9 inner block groups
    stream = with_skips.group("conv1")
    assert set(stream.producers) == {"conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"}
    names = {ref.name for ref in stream.axes}
    assert {"bn1.running_mean", "layer1.0.bn2.running_var", "layer1.2.bn2.weight", "layer2.0.conv1.weight",
            "layer2.0.shortcut.0.weight"} <= names
    stage2 = with_skips.group("layer2.0.conv2")
    assert set(stage2.producers) == {"layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2", "layer2.2.conv2"}
    assert "bn1.num_batches_tracked" not in names


def test_flatten_of_a_feature_map_permutes_blocks_of_the_next_layer() -> None:
    model = build_model("vgg:width=0.125", (3, 32, 32), 10, seed=0)
    groups = permutation_spec(model, torch.randn(2, 3, 32, 32))
    refs = [r for g in groups.groups for r in g.axes if r.name == "fc.0.weight" and r.axis == 1]
    assert len(refs) == 1 and refs[0].block == 16  # 32 channels of 4x4
    assert expand(torch.tensor([1, 0]), 3).tolist() == [3, 4, 5, 0, 1, 2]


def test_the_example_pass_leaves_batchnorm_statistics_and_modes_alone() -> None:
    model = build_model("resnet:depth=8", (3, 8, 8), 10, seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    permutation_spec(model, torch.randn(4, 3, 8, 8))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("model", "culprit"), [
    (DataDependent(64, 10), "unsupported module 'gate' (Gate)"),
    (Concat(64, 10), "unsupported operation 'cat'"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(36, 2)), "unsupported module '0' (Conv2d)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Softmax(dim=1), nn.Linear(8, 2)), "unsupported module '2'"),
])
def test_what_the_rules_do_not_cover_is_one_line_naming_the_first_culprit(model: nn.Module, culprit: str) -> None:
    shape = (4, 5, 5) if isinstance(model[0] if isinstance(model, nn.Sequential) else None, nn.Conv2d) else (64,)
    with pytest.raises(ValueError) as exc:
        permutation_spec(model, torch.randn(2, *shape))
    message = str(exc.value)
    assert "\n" not in message and culprit in message
