"""`lsdb.landscape.adaptive_sharpness` against closed forms, rescaling invariance and its own definitions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lsdb.landscape.adaptive_sharpness import (
    autograd_objective,
    average_case_sharpness,
    model_objective,
    worst_case_sharpness,
)

RHO = 0.3


def quadratic(seed: int = 0, p: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, w): L(θ) = ½ (θ − w)ᵀ A (θ − w), A positive definite with well separated eigenvalues, minimum at w."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen, dtype=torch.float64))
    lam = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.2, 0.1], dtype=torch.float64)[:p]
    w = torch.randn(p, generator=gen, dtype=torch.float64)
    return q @ torch.diag(lam) @ q.T, w


@pytest.mark.parametrize("adaptive", [False, True])
def test_worst_and_average_case_of_a_quadratic_at_its_minimum_are_closed_form(adaptive: bool) -> None:
    a, w = quadratic()
    obj = autograd_objective(lambda t: 0.5 * (t - w) @ a @ (t - w))
    c = w.abs() if adaptive else torch.ones_like(w)
    b = c[:, None] * a * c[None, :]  # the quadratic form in γ: δ = c ⊙ γ
    worst = worst_case_sharpness(obj, w, rho=RHO, adaptive=adaptive, steps=200)
    assert worst.value == pytest.approx(0.5 * RHO**2 * float(torch.linalg.eigvalsh(b)[-1]), rel=1e-8)
    assert worst.perturbation_norm == pytest.approx(RHO, rel=1e-12) and worst.diverged_at is None
    assert worst.loss_before == 0.0 and worst.loss_after == pytest.approx(worst.value)
    assert worst.perturbation_l2 == pytest.approx(float(worst.delta.norm()))
    assert (worst.curve[1:] >= worst.curve[:-1]).all() and len(worst.curve) == worst.steps + 1
    avg = average_case_sharpness(obj, w, rho=RHO, adaptive=adaptive, samples=3000)
    exact = 0.5 * RHO**2 * float(b.trace()) / len(w)  # E uuᵀ = I/P for u uniform on the sphere
    assert abs(avg.value - exact) <= 4 * avg.stderr
    assert worst.value >= avg.value


def test_linear_losses_have_closed_form_worst_cases_in_both_norms() -> None:
    g = torch.tensor([0.5, -2.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    w = torch.tensor([1.0, -0.5, 2.0, 1.5, -0.1], dtype=torch.float64)
    obj = autograd_objective(lambda t: g @ t)
    for adaptive in (False, True):
        c = w.abs() if adaptive else torch.ones_like(w)
        l2 = worst_case_sharpness(obj, w, rho=RHO, norm="l2", adaptive=adaptive, steps=30)
        linf = worst_case_sharpness(obj, w, rho=RHO, norm="linf", adaptive=adaptive, steps=30)
        assert l2.value == pytest.approx(RHO * float((c * g).norm()), rel=1e-9)  # ρ ‖c ⊙ g‖₂
        assert linf.value == pytest.approx(RHO * float((c * g).abs().sum()), rel=1e-12)  # ρ ‖c ⊙ g‖₁
        assert linf.perturbation_norm == pytest.approx(RHO)


def test_the_linf_worst_case_of_a_diagonal_quadratic_is_the_corner() -> None:
    d = torch.tensor([3.0, 1.0, 0.5, 2.0], dtype=torch.float64)
    w = torch.tensor([0.2, -1.0, 2.0, 0.7], dtype=torch.float64)
    obj = autograd_objective(lambda t: 0.5 * (d * (t - w) ** 2).sum())
    worst = worst_case_sharpness(obj, w, rho=RHO, norm="linf", adaptive=True, steps=20)
    assert worst.value == pytest.approx(0.5 * RHO**2 * float((d * w**2).sum()), rel=1e-12)


def relu_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()


def rescaled(net: nn.Module, k: int, c: float) -> nn.Module:
    """Layer k (weight and bias) × c and the next Linear layer's weight × 1/c: the same function for c > 0."""
    out = relu_net()
    out.load_state_dict(net.state_dict())
    with torch.no_grad():
        out[k].weight.mul_(c)
        out[k].bias.mul_(c)
        out[k + 2].weight.div_(c)
    return out


def test_adaptive_sharpness_is_invariant_to_a_function_preserving_rescaling() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=gen)
    net = relu_net()
    other = rescaled(net, 0, 7.0)
    torch.testing.assert_close(net(x), other(x))  # the same function
    results = {}
    for name, model in (("net", net), ("rescaled", other)):
        obj, theta = model_objective(model, x, y)
        for adaptive in (True, False):
            for norm in ("l2", "linf"):
                wc = worst_case_sharpness(obj, theta, rho=0.5 if adaptive else 0.05, norm=norm, adaptive=adaptive,
                                          steps=15, generator=torch.Generator().manual_seed(1))
                av = average_case_sharpness(obj, theta, rho=0.5 if adaptive else 0.05, norm=norm, adaptive=adaptive,
                                            samples=10, generator=torch.Generator().manual_seed(2))
                results[name, adaptive, norm] = (wc.value, av.value)
    for norm in ("l2", "linf"):
        for i in range(2):
            assert results["net", True, norm][i] == pytest.approx(results["rescaled", True, norm][i], rel=1e-9)
            assert results["net", True, norm][i] > 0
        # plain sharpness is not invariant: the rescaling changes it a lot
        assert abs(results["net", False, norm][0] / results["rescaled", False, norm][0] - 1) > 0.1


def test_worst_case_exceeds_average_case_on_a_digits_mlp() -> None:
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    net = build_model("mlp:widths=[32]", data.input_shape, data.num_classes, seed=0).double().eval()
    x, y = data.split("train")
    obj, theta = model_objective(net, x[:200].double(), y[:200], batch_size=64)
    whole, _ = model_objective(net, x[:200].double(), y[:200])
    assert obj.value(theta) == pytest.approx(whole.value(theta), rel=1e-12)  # batching does not change the loss
    for norm in ("l2", "linf"):
        rho = 0.5 if norm == "l2" else 0.01
        wc = worst_case_sharpness(obj, theta, rho=rho, norm=norm, steps=10)
        av = average_case_sharpness(obj, theta, rho=rho, norm=norm, samples=10)
        assert wc.value > av.value + 3 * av.stderr and wc.value > 0


def test_an_ascent_that_diverges_stops_with_its_step() -> None:
    w = torch.zeros(3, dtype=torch.float64) + 1.0

    def f(t: torch.Tensor) -> torch.Tensor:  # finite near w, +inf once a coordinate moves past 1.4
        out = ((t - 1.0) ** 2).sum()
        return torch.where((t - 1.0).abs().max() > 0.4, torch.tensor(math.inf, dtype=t.dtype), out)

    obj = autograd_objective(f)
    res = worst_case_sharpness(obj, w, rho=0.5, norm="linf", adaptive=False, steps=20,
                               generator=torch.Generator().manual_seed(0))
    assert res.diverged_at is not None and res.steps == res.diverged_at
    assert math.isfinite(res.value) and math.isinf(res.proposed[res.diverged_at])
    assert len(res.curve) == res.diverged_at + 1 and res.diverged_at >= 1  # the start (radius ρ/2) was finite
    start = worst_case_sharpness(obj, w, rho=1.0, norm="linf", adaptive=False, steps=5)  # starts past 1.4
    assert start.diverged_at == 0 and start.steps == 0 and start.value == 0.0 and math.isinf(start.proposed[0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rho": 0.0}, "rho must be"),
    ({"rho": math.inf}, "rho must be"),
    ({"rho": 0.1, "norm": "l1"}, "norm must be"),
    ({"rho": 0.1, "steps": 0}, "steps must be"),
    ({"rho": 0.1, "step_size": 0.0}, "step_size must be"),
])
def test_bad_worst_case_inputs_are_refused(kwargs: dict, message: str) -> None:
    obj = autograd_objective(lambda t: (t**2).sum())
    with pytest.raises(ValueError, match=message):
        worst_case_sharpness(obj, torch.ones(3, dtype=torch.float64), **kwargs)


def test_bad_average_case_and_objective_inputs_are_refused() -> None:
    obj = autograd_objective(lambda t: (t**2).sum())
    with pytest.raises(ValueError, match="samples must be"):
        average_case_sharpness(obj, torch.ones(3, dtype=torch.float64), rho=0.1, samples=1)
    with pytest.raises(ValueError, match="not finite"):
        average_case_sharpness(autograd_objective(lambda t: t.sum() / 0.0), torch.ones(3, dtype=torch.float64),
                               rho=0.1)
    net = relu_net()
    with pytest.raises(ValueError, match="same, non-zero"):
        model_objective(net, torch.zeros(0, 5, dtype=torch.float64), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="loss must be"):
        model_objective(net, torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, dtype=torch.long), loss="hinge")
