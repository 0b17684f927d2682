"""bf16 autocast evaluation and its error against float32, checked by plain forward passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lsdb.landscape import (
    Evaluator,
    ParamLayout,
    bf16_error,
    evaluate_bf16,
    grid_axis,
    grid_coefficients,
    relative_error,
    sample_indices,
)


def _problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=gen)
    y = torch.randint(0, 5, (300,), generator=gen)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 5))
    n = ParamLayout.from_module(model).numel
    dirs = 0.3 * torch.randn(2, n, generator=gen)
    return model, x, y, dirs


def _plain_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, points: torch.Tensor,
                  bf16: bool) -> torch.Tensor:
    """Cross-entropy at each point by loading it into the module and running a plain forward pass."""
    layout = ParamLayout.from_module(model)
    out = []
    for p in points:
        model.load_state_dict(layout.unflatten(p), strict=False)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(float(F.cross_entropy(model(x).double(), y)))
    return torch.tensor(out, dtype=torch.float64)


def test_relative_error_is_max_and_median_of_the_ratio() -> None:
    err = relative_error(torch.tensor([1.1, 2.0, 2.9, 5.0]), torch.tensor([1.0, 2.0, 3.0, float("nan")]))
    assert err.n_points == 3
    assert err.max_rel == pytest.approx(0.1) and err.median_rel == pytest.approx(0.1 / 3)
    assert relative_error(torch.tensor([float("inf")]), torch.tensor([1.0])).max_rel == float("inf")


def test_sample_is_seeded_and_takes_all_of_a_small_grid() -> None:
    assert torch.equal(sample_indices(100), sample_indices(100))
    assert len(sample_indices(100)) == 16 and len(set(sample_indices(100).tolist())) == 16
    assert not torch.equal(sample_indices(100, seed=1), sample_indices(100))
    assert torch.equal(sample_indices(9), torch.arange(9))


def test_recorded_error_equals_plain_float32_and_bf16_forward_passes() -> None:
    model, x, y, dirs = _problem()
    ev = Evaluator(model, x, y, strategy="per_point", reuse_first_layer=False)
    coefs = grid_coefficients(grid_axis(-1.0, 1.0, 7), grid_axis(-1.0, 1.0, 7))
    err = bf16_error(ev, dirs, coefs)
    theta = ev.theta0.cpu()
    # θ0 + Dᵀc rounded to float32 as the evaluator rounds it: bf16 turns a 1-ulp float32 difference of a
    # weight into a 1-ulp bf16 one, which would blur the comparison
    dirs_t = dirs.t().contiguous()
    points = torch.stack([torch.addmv(theta, dirs_t, c.to(torch.float32)) for c in coefs[sample_indices(len(coefs))]])
    fp32, bf16 = _plain_losses(model, x, y, points, False), _plain_losses(model, x, y, points, True)
    expected = relative_error(bf16, fp32)
    assert err.n_points == 16 and err.median_rel > 1e-6
    # the evaluator rounds each example's loss to float32 (the reference sums float64 ones): the relative
    # errors agree to about float32's spacing, far below their size (~1e-4)
    assert err.max_rel == pytest.approx(expected.max_rel, abs=2e-7)
    assert err.median_rel == pytest.approx(expected.median_rel, abs=2e-7)


def test_bf16_losses_differ_from_float32_within_a_percent() -> None:
    model, x, y, dirs = _problem()
    ev = Evaluator(model, x, y)
    coefs = grid_coefficients(grid_axis(-1.0, 1.0, 5), grid_axis(-1.0, 1.0, 5))
    fp32, bf16 = ev.along(dirs, coefs).loss, evaluate_bf16(ev, dirs, coefs).loss
    rel = ((bf16 - fp32).abs() / fp32).max()
    assert 0.0 < rel < 1e-2
    # evaluating under bf16 leaves the evaluator's float32 results untouched
    assert torch.equal(ev.along(dirs, coefs).loss, fp32)


def test_bf16_refuses_a_float64_evaluator() -> None:
    model, x, y, dirs = _problem()
    ev = Evaluator(model, x, y, dtype=torch.float64)
    with pytest.raises(ValueError, match="bf16 needs a float32 evaluation"):
        evaluate_bf16(ev, dirs, torch.zeros(1, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_on_cuda_is_close_to_float32_and_reports_its_error() -> None:
    model, x, y, dirs = _problem()
    ev = Evaluator(model, x, y, device="cuda")
    coefs = grid_coefficients(grid_axis(-1.0, 1.0, 5), grid_axis(-1.0, 1.0, 5))
    fp32, bf16 = ev.along(dirs, coefs).loss, evaluate_bf16(ev, dirs, coefs).loss
    assert 0.0 < ((bf16 - fp32).abs() / fp32).max() < 1e-2
    err = bf16_error(ev, dirs, coefs)
    assert err.n_points == 16 and 0.0 < err.median_rel <= err.max_rel < 1e-2
