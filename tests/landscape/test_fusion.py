"""Graph rewrites for per-point passes: the same function as the model, sharing its live parameters."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lsdb.data import Dataset
from lsdb.landscape import Evaluator, grid_axis, grid_coefficients
from lsdb.landscape.flat_model import channels_last
from lsdb.landscape.fusion import FusedConv2d, MaxPool2x2, fuse, onednn_available
from lsdb.landscape.precision import bf16_autocast
from tests.landscape.conftest import make_model
from tests.landscape.test_first_layer import filter_plane

ONEDNN = [False, True] if onednn_available() else [False]


def _random_bn_stats(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.3, generator=gen)
                m.running_mean.normal_(0.0, 0.3, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)


@pytest.mark.parametrize("onednn", ONEDNN)
def test_batchnorm_folding_is_the_closed_form(onednn: bool) -> None:
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
    _random_bn_stats(nn.Sequential(bn))
    fused = FusedConv2d(conv, bn.eval(), add=False, relu=False, onednn=onednn)
    w, b = fused.weight_and_bias()
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(w, conv.weight * scale[:, None, None, None], rtol=1e-6, atol=0)
    torch.testing.assert_close(b, bn.bias - bn.running_mean * scale, rtol=1e-6, atol=1e-7)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["simple_cnn:channels=[8,16]", "resnet:depth=8", "resnet:depth=8,skip=false",
                                  "vgg:width=0.125"])
@pytest.mark.parametrize("onednn", ONEDNN)
def test_fused_zoo_models_compute_the_same_function(spec: str, onednn: bool, digits_image: Dataset) -> None:
    model = make_model(spec, digits_image).float()
    _random_bn_stats(model)
    x = channels_last(digits_image.test[0][:40].float())
    fused = fuse(model, onednn=onednn)
    assert fused is not None
    with torch.inference_mode():
        expected, got = model(x), fused(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = sum(isinstance(m, FusedConv2d) and m.bn is not None for m in fused.modules())
    assert folded == n_bn  # every BatchNorm of these models follows a convolution


def test_fused_model_follows_the_live_parameters(digits_image: Dataset) -> None:
    model = make_model("resnet:depth=8", digits_image).float()
    _random_bn_stats(model)
    fused = fuse(model)
    assert fused is not None
    x = digits_image.test[0][:16].float()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1).add_(0.01)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_var is not None
                m.running_var.mul_(1.5)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out.relu() if out.sum() > 0 else out  # not traceable by torch.fx


def test_untraceable_or_unchanged_models_are_left_alone() -> None:
    assert fuse(_DataDependent()) is None
    assert fuse(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.ReLU())) is None  # nothing to rewrite


@pytest.mark.parametrize(("spec", "reuse"), [("resnet:depth=8", False), ("resnet:depth=8", True),
                                             ("simple_cnn:channels=[8,8]", True), ("vgg:width=0.125", False),
                                             ("simple_cnn", False)])
def test_evaluator_with_fusion_matches_the_plain_per_point_path(spec: str, reuse: bool,
                                                                digits_image: Dataset) -> None:
    model = make_model(spec, digits_image).float()
    _random_bn_stats(model)
    x, y = digits_image.test[0][:48], digits_image.test[1][:48]
    dirs = filter_plane(model).float()
    coefs = grid_coefficients(grid_axis(-1, 1, 3), grid_axis(-1, 1, 3))
    runs = {}
    for fused in (None, False):
        ev = Evaluator(model, x, y, strategy="per_point", reuse_first_layer=reuse, fuse=fused)
        runs[fused] = ev.along(dirs, coefs)
    assert runs[None].fused and not runs[False].fused
    assert runs[None].reused_first_layer == reuse
    torch.testing.assert_close(runs[None].loss, runs[False].loss, rtol=1e-5, atol=0)
    assert torch.equal(runs[None].accuracy, runs[False].accuracy)


class _PoolUses(nn.Module):
    """conv-ReLU-pool three times: plain, with a residual add, and with the ReLU's output read twice."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(torch.relu(self.a(x)))
        h = self.pool(torch.relu(self.b(h) + h))
        r = torch.relu(self.c(h))
        return self.pool(r).sum((2, 3)) + r.mean((2, 3))


@pytest.mark.parametrize("onednn", ONEDNN)
def test_a_max_pool_joins_the_convolution_it_alone_reads(onednn: bool) -> None:
    torch.manual_seed(0)
    model = _PoolUses().eval()
    fused = fuse(model, onednn=onednn)
    assert fused is not None
    convs = {m.conv: m for m in fused.modules() if isinstance(m, FusedConv2d)}
    assert convs[model.a].pool and not convs[model.b].pool and not convs[model.c].pool
    assert not any(m.blocked_out for m in convs.values())  # b reads a's output twice (x and other)
    modules = dict(fused.named_modules())
    pools = [n for n in fused.graph.nodes if n.op == "call_module" and isinstance(modules[n.target], MaxPool2x2)]
    assert len(pools) == 2  # of three: the first joined its convolution
    x = channels_last(torch.randn(6, 4, 8, 8))
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not onednn_available(), reason="needs oneDNN")
def test_pooled_outputs_stay_blocked_between_fused_convolutions(digits_image: Dataset) -> None:
    model = make_model("simple_cnn", digits_image).float().eval()  # three conv-ReLU-pool, then GAP and linear
    fused = fuse(model, onednn=True)
    assert fused is not None
    convs = [m for m in fused.modules() if isinstance(m, FusedConv2d)]
    assert [m.pool for m in convs] == [True] * 3
    assert [m.blocked_out for m in convs] == [True, True, False]  # the last one's reader is not a convolution
    x = channels_last(digits_image.test[0][:40].float())
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
        h = convs[0](x)
        assert h.is_mkldnn and not convs[2](convs[1](h)).is_mkldnn
    with torch.no_grad():  # outside inference mode too: no gradient is recorded
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)  # with autograd: plain tensors


def test_no_fusion_under_autocast_or_batched(digits_image: Dataset) -> None:
    model = make_model("resnet:depth=8", digits_image).float()
    x, y = digits_image.test[0][:8], digits_image.test[1][:8]
    assert Evaluator(model, x, y, strategy="per_point").fused is not None
    assert Evaluator(model, x, y, strategy="batched").fused is None
    assert Evaluator(model, x, y, strategy="per_point", autocast=torch.bfloat16).fused is None
    assert Evaluator(model, x, y, strategy="per_point", fuse=False).fused is None


def test_an_enclosing_bf16_autocast_runs_the_unfused_model(digits_image: Dataset) -> None:
    model = make_model("resnet:depth=8", digits_image).float()
    _random_bn_stats(model)
    x, y = digits_image.test[0][:16], digits_image.test[1][:16]
    ev = Evaluator(model, x, y, strategy="per_point")
    assert ev.fused is not None
    with bf16_autocast(ev.device):
        lowered = ev.at_points(ev.theta0.unsqueeze(0))
    plain = ev.at_points(ev.theta0.unsqueeze(0))
    assert not lowered.fused and plain.fused
    torch.testing.assert_close(lowered.loss, plain.loss, rtol=2e-2, atol=0)
