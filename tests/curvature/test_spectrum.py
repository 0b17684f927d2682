"""Hutchinson's trace and stochastic Lanczos quadrature against exact values of tiny float64 Hessians."""

from __future__ import annotations

import math

import pytest
import torch

from lsdb.landscape.hvp import HessianOperator
from lsdb.landscape.spectrum import gaussian_density, hutchinson_trace, slq_quadrature, spectral_density
from tests.curvature.curvature_factories import make_problem, reference_hessian


def _hessian(seed: int = 0) -> tuple[HessianOperator, torch.Tensor]:
    model, x, y = make_problem(seed=seed, n=30)
    return HessianOperator(model, x, y), reference_hessian(model, x, y)[1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_trace_is_within_four_reported_standard_errors_of_the_exact_trace(seed: int) -> None:
    op, h = _hessian()
    est = hutchinson_trace(op.matmat, op.n, tol=0.05, max_probes=2000, block=16,
                           generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    exact = float(h.trace())
    assert abs(est.value - exact) <= 4 * est.stderr
    assert est.converged and est.stderr <= 0.05 * abs(est.value) and est.probes >= 10
    assert len(est.samples) == est.probes == op.hvp_count


def test_the_reported_standard_error_matches_the_theoretical_one() -> None:
    op, h = _hessian()
    est = hutchinson_trace(op.matmat, op.n, tol=0.0, max_probes=300, block=50,
                           generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    off = h - torch.diag(torch.diag(h))
    theory = math.sqrt(2 * float((off**2).sum()) / est.probes)  # Var zᵀHz = 2 Σ_{i≠j} H_ij² for Rademacher z
    assert not est.converged and est.probes == 300
    assert 0.75 * theory <= est.stderr <= 1.33 * theory


def test_quadrature_is_exact_for_polynomials_of_degree_below_2m() -> None:
    op, h = _hessian(seed=1)
    m = 5
    nodes, weights = slq_quadrature(op.matmat, op.n, runs=2, steps=m, generator=torch.Generator().manual_seed(3),
                                    dtype=torch.float64)
    starts = torch.randn(2, op.n, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, dtype=torch.float64))
    for r in range(2):
        v = starts[r] / starts[r].norm()
        for p in range(2 * m):  # Golub & Welsch: Σ τ_j θ_j^p = vᵀ H^p v for p ≤ 2m − 1
            moment = v @ torch.linalg.matrix_power(h, p) @ v
            torch.testing.assert_close((weights[r] * nodes[r] ** p).sum(), moment, rtol=1e-8, atol=1e-12)


def test_density_integrates_to_one_and_covers_the_spectrum() -> None:
    op, h = _hessian()
    exact = torch.linalg.eigvalsh(h)
    dens = spectral_density(op.matmat, op.n, runs=4, steps=op.n, bins=500, sigma=0.01,
                            generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.trapezoid(dens.density, dens.grid).item() == pytest.approx(1.0, abs=1e-12)
    assert (dens.density >= 0).all() and dens.grid[0] < exact[0] and dens.grid[-1] > exact[-1]
    live = dens.weights > 1e-12
    assert dens.nodes[live].min() >= exact[0] - 1e-9 and dens.nodes[live].max() <= exact[-1] + 1e-9
    assert dens.trace(op.n) == pytest.approx(float(h.trace()), rel=0.5)  # a 4-sample estimate


def test_a_single_node_gives_one_gaussian_of_the_requested_width() -> None:
    nodes = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    weights = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    grid, density, sigma = gaussian_density(torch.tensor([[-1.0, 1.0]]), torch.tensor([[0.5, 0.5]]), 2001, 0.05)
    assert sigma == pytest.approx(0.1)
    peak = density[(grid - 1.0).abs().argmin()]
    assert peak.item() == pytest.approx(0.5 / (0.1 * math.sqrt(2 * math.pi)), rel=1e-3)
    grid, density, _ = gaussian_density(nodes, weights, 101, 0.1)  # zero-weight nodes are ignored
    assert grid[density.argmax()].item() == pytest.approx(2.0, abs=0.05)
