"""REPAIR (Jordan et al. 2023): after the correction every hidden unit of the interpolated network has the
interpolated mean and standard deviation of the endpoints; BatchNorm reset equals torch's update_bn."""

from __future__ import annotations

import torch
from torch.optim.swa_utils import update_bn

from lsdb.landscape.permutations import permutation_spec
from lsdb.landscape.repair import interpolate_state, interpolate_stats, layer_statistics, repair, reset_batchnorm
from lsdb.models import build_model
from tests.alignment.factories import zoo_model


def test_repair_gives_every_unit_the_interpolated_statistics_of_the_endpoints() -> None:
    spec_name, shape = "simple_cnn:channels=[6,8]", (1, 8, 8)
    a, b = zoo_model(spec_name, shape, seed=0), zoo_model(spec_name, shape, seed=1)
    x = torch.randn(96, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batches = list(x.split(32))
    layers = [p for g in permutation_spec(a, x[:2]).groups for p in g.producers]
    assert layers == ["features.0", "features.3"]
    alpha = 0.3
    targets = interpolate_stats(layer_statistics(a, layers, batches), layer_statistics(b, layers, batches), alpha)
    mid = build_model(spec_name, shape, 10).double().eval()
    mid.load_state_dict(interpolate_state(a.state_dict(), b.state_dict(), alpha))
    before = layer_statistics(mid, layers, batches)
    assert (before["features.3"].std < targets["features.3"].std).float().mean() > 0.5  # variance collapse
    repair(mid, targets, batches, eps=0.0)
    after = layer_statistics(mid, layers, batches)
    for name in layers:
        torch.testing.assert_close(after[name].mean, targets[name].mean, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(after[name].std, targets[name].std, rtol=1e-7, atol=1e-9)
    damped = build_model(spec_name, shape, 10).double().eval()
    damped.load_state_dict(interpolate_state(a.state_dict(), b.state_dict(), alpha))
    repair(damped, targets, batches)  # BatchNorm's ε = 1e-5: never above the target
    assert (layer_statistics(damped, layers[:1], batches)["features.0"].std <= targets["features.0"].std).all()


def test_batchnorm_reset_equals_torch_update_bn() -> None:
    model = zoo_model("resnet:depth=8", (3, 8, 8), seed=0)
    reference = zoo_model("resnet:depth=8", (3, 8, 8), seed=0)
    x = torch.randn(40, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert reset_batchnorm(model, x.split(16))
    update_bn([(xb,) for xb in x.split(16)], reference)
    reference.eval()
    for k, v in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-12, atol=1e-12)
    assert not reset_batchnorm(build_model("mlp:widths=[4]", (8,), 2), x.split(16))
