"""`lsdb.landscape.curves` against closed forms and an autograd reference (Garipov et al. 2018, §3)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn

from lsdb.landscape.curves import (
    CurveModel,
    CurveTraining,
    bezier_coefficients,
    curve_length,
    curve_lr_factor,
    polychain_coefficients,
    train_curve,
)

T = torch.linspace(0, 1, 101, dtype=torch.float64)


@pytest.mark.parametrize("n_points", [2, 3, 4, 6])
@pytest.mark.parametrize("coefficients", [bezier_coefficients, polychain_coefficients])
def test_coefficients_are_exact_at_the_ends_and_a_partition_of_unity(coefficients, n_points: int) -> None:
    c = coefficients(T, n_points)
    assert c.shape == (len(T), n_points) and (c >= 0).all()
    first, last = torch.zeros(n_points, dtype=torch.float64), torch.zeros(n_points, dtype=torch.float64)
    first[0], last[-1] = 1.0, 1.0
    assert torch.equal(c[0], first) and torch.equal(c[-1], last)
    torch.testing.assert_close(c.sum(dim=1), torch.ones(len(T), dtype=torch.float64), rtol=0, atol=1e-14)


def test_quadratic_bezier_is_the_papers_curve_and_the_chain_passes_through_its_bend() -> None:
    b = bezier_coefficients(T, 3)
    torch.testing.assert_close(b, torch.stack([(1 - T) ** 2, 2 * T * (1 - T), T**2], dim=1), rtol=0, atol=1e-15)
    p = polychain_coefficients(torch.tensor([0.25, 0.5, 0.75]), 3)
    torch.testing.assert_close(p, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]],
                                               dtype=torch.float64))


def _net(seed: int, bn: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(6, 5)] + ([nn.BatchNorm1d(5)] if bn else []) + [nn.ReLU(), nn.Linear(5, 3)]
    return nn.Sequential(*layers).double()


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("bends", [1, 3])
def test_a_new_curve_is_the_segment_with_exact_end_points(kind: str, bends: int) -> None:
    a, b = _net(0), _net(1)
    curve = CurveModel(a, a.state_dict(), b.state_dict(), bends=bends, kind=kind)
    wa, wb = _flat(a), _flat(b)
    assert torch.equal(curve.weights(0.0), wa) and torch.equal(curve.weights(1.0), wb)
    line = (1 - T).unsqueeze(1) * wa + T.unsqueeze(1) * wb
    torch.testing.assert_close(curve.weights(T), line, rtol=0, atol=1e-12)  # bends evenly spaced on the segment
    assert curve.length() == pytest.approx(float((wb - wa).norm()), rel=1e-10)
    assert curve.free_points.shape == (bends, len(wa))


def test_curve_length_of_a_bent_curve_matches_a_fine_polyline() -> None:
    points = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0], [4.0, 0.0]], dtype=torch.float64)
    fine = bezier_coefficients(torch.linspace(0, 1, 20001, dtype=torch.float64), 4) @ points
    assert curve_length(points, "bezier") == pytest.approx(float((fine[1:] - fine[:-1]).norm(dim=1).sum()), rel=1e-6)
    chain = math.sqrt(5) + math.sqrt(13) + math.sqrt(2)
    assert curve_length(points, "polychain") == pytest.approx(chain, rel=1e-12)


def test_fixing_an_end_that_is_not_given_is_refused() -> None:
    a = _net(0)
    with pytest.raises(ValueError, match="cannot fix the start"):
        CurveModel(a, None, a.state_dict())
    with pytest.raises(ValueError, match="cannot fix the end"):
        CurveModel(a, a.state_dict(), None)
    free = CurveModel(a, None, _net(1).state_dict(), fix_start=False)  # a free end starts at the module's weights
    assert torch.equal(free.control_points()[0], _flat(a)) and free.free_points.shape[0] == 2


def _data(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (n,), generator=gen)


def test_fitted_curve_keeps_its_end_points_exactly() -> None:
    a, b = _net(0), _net(1)
    x, y = _data()
    curve = CurveModel(a, a.state_dict(), b.state_dict(), bends=2, kind="polychain")
    before = curve.free_points.detach().clone()
    fit = train_curve(curve, x, y, CurveTraining(epochs=3, lr=0.1, batch_size=16), torch.Generator().manual_seed(1))
    assert fit.steps == 9 and len(fit.epoch_loss) == 3 and not fit.stopped
    assert not torch.equal(curve.free_points, before)
    assert torch.equal(curve.weights(0.0), _flat(a)) and torch.equal(curve.weights(1.0), _flat(b))


def test_training_equals_autograd_through_the_curve_with_torch_sgd() -> None:
    """The fused chain rule + momentum update equals autograd through φ(t) and torch.optim.SGD, with wd/2‖φ(t)‖²."""
    a, b = _net(0), _net(1)
    x, y = _data()
    config = CurveTraining(epochs=2, lr=0.05, momentum=0.9, weight_decay=1e-2, batch_size=16)
    ours = CurveModel(a, a.state_dict(), b.state_dict(), bends=2, kind="bezier")
    ref = copy.deepcopy(ours)
    train_curve(ours, x, y, config, torch.Generator().manual_seed(3))

    gen = torch.Generator().manual_seed(3)
    torch.randint(0, 2**62, (1,), generator=gen)  # the dropout seed train_curve draws first
    opt = torch.optim.SGD([ref.free_points], lr=config.lr, momentum=config.momentum)
    for epoch in (1, 2):
        for group in opt.param_groups:
            group["lr"] = config.lr * curve_lr_factor(epoch / config.epochs)
        order = torch.randperm(len(x), generator=gen)
        ts = torch.rand(3, generator=gen, dtype=torch.float64)
        for k in range(3):
            idx = order[k * 16 : (k + 1) * 16]
            theta = ref.weights(ts[k])
            loss = F.cross_entropy(ref.forward_at(theta, x[idx]), y[idx]) + 0.5 * config.weight_decay * theta @ theta
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.testing.assert_close(ours.free_points, ref.free_points, rtol=1e-10, atol=1e-12)


class Ring(nn.Module):
    """A two-parameter 'network' whose squared-error loss is (‖w‖² − 1)²: a ring of minima."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w.square().sum() * torch.ones(len(x), 1, dtype=x.dtype)


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_on_a_ring_of_minima_the_fitted_curve_goes_round_while_the_line_cuts_through(kind: str) -> None:
    """Two minima on the unit circle: the chord has a barrier, a curve along the ring has none."""
    start = {"w": torch.tensor([1.0, 0.0], dtype=torch.float64)}
    end = {"w": torch.tensor([-0.6, 0.8], dtype=torch.float64)}
    x, y = torch.zeros(32, 1, dtype=torch.float64), torch.ones(32, 1, dtype=torch.float64)
    curve = CurveModel(Ring(), start, end, bends=1, kind=kind)
    config = CurveTraining(epochs=60, lr=0.05, weight_decay=0.0, batch_size=8, loss="mse")
    train_curve(curve, x, y, config, torch.Generator().manual_seed(0))

    def ring_loss(points: torch.Tensor) -> torch.Tensor:
        return (points.square().sum(dim=1) - 1).square()

    on_curve = ring_loss(curve.weights(T).detach())
    on_line = ring_loss((1 - T).unsqueeze(1) * start["w"] + T.unsqueeze(1) * end["w"])
    assert on_curve.mean() <= on_line.mean() and on_curve.max() < 0.5 * on_line.max()
    assert on_line.max() > 0.6  # the chord passes within 0.45 of the centre


def test_state_at_recomputes_batchnorm_as_swa_utils_does() -> None:
    a, b = _net(0, bn=True), _net(1, bn=True)
    x, _ = _data()
    curve = CurveModel(a, a.state_dict(), b.state_dict(), bends=1)
    with torch.no_grad():
        curve.free_points.add_(0.1)
    state = curve.state_at(0.3, x.split(16))
    ref = copy.deepcopy(a)
    params = curve.parameters_at(curve.weights(0.3).detach())
    with torch.no_grad():
        for name, value in params.items():
            ref.get_parameter(name).copy_(value)
    update_bn(list(x.split(16)), ref)
    for key, value in ref.state_dict().items():
        assert torch.equal(state[key], value), key
