"""`radial_widths` against closed forms: a quadratic bowl, censoring, a centre above the threshold."""

from __future__ import annotations

import pytest
import torch

from lsdb.landscape.radial import radial_profiles, radial_widths


def quadratic_bowl(dim: int, seed: int) -> tuple[torch.Tensor, object]:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(dim, dtype=torch.float64)

    def batch_loss(points: torch.Tensor) -> torch.Tensor:
        # element-wise products and row sums, no matrix product: each row's rounding is the same whatever
        # the batch (a BLAS product may block 3 rows and 40 rows differently, as MKL does on some CPUs)
        return 0.5 * ((points.unsqueeze(1) * a).sum(-1) * points).sum(-1)

    return a, batch_loss


def unit_rows(k: int, dim: int, seed: int) -> torch.Tensor:
    d = torch.randn(k, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return d / torch.linalg.vector_norm(d, dim=1, keepdim=True)


def test_width_of_a_quadratic_bowl_is_its_closed_form() -> None:
    a, batch_loss = quadratic_bowl(6, 0)
    u = unit_rows(10, 6, 1)
    tau = 0.7
    found = radial_widths(batch_loss, torch.zeros(6, dtype=torch.float64), u, tau, max_radius=5.0, iters=40)
    expected = torch.sqrt(2 * tau / torch.einsum("ki,ij,kj->k", u, a, u))  # ½ r² uᵀAu = τ
    assert float(expected.max()) < 5.0 and not bool(found.censored.any())
    assert torch.allclose(found.widths, expected, rtol=1e-9, atol=1e-9)
    assert found.center_loss == 0.0 and found.threshold == tau


def test_the_width_is_measured_from_any_centre_with_a_shifted_bowl() -> None:
    a, _ = quadratic_bowl(4, 2)
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)

    def batch_loss(points: torch.Tensor) -> torch.Tensor:
        d = points - c
        return 0.5 * torch.einsum("bi,ij,bj->b", d, a, d) + 0.25

    u = unit_rows(5, 4, 3)
    found = radial_widths(batch_loss, c, u, 1.25, max_radius=4.0, n_grid=7, iters=40)
    assert found.center_loss == pytest.approx(0.25)
    expected = torch.sqrt(2 * 1.0 / torch.einsum("ki,ij,kj->k", u, a, u))
    assert torch.allclose(found.widths, expected, rtol=1e-9, atol=1e-9)


def test_directions_that_never_cross_are_censored_at_the_largest_radius() -> None:
    a = torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64))  # flat along the second axis

    def batch_loss(points: torch.Tensor) -> torch.Tensor:
        # element-wise products and row sums, no matrix product: each row's rounding is the same whatever
        # the batch (a BLAS product may block 3 rows and 40 rows differently, as MKL does on some CPUs)
        return 0.5 * ((points.unsqueeze(1) * a).sum(-1) * points).sum(-1)

    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    found = radial_widths(batch_loss, torch.zeros(2, dtype=torch.float64), u, 0.5, max_radius=3.0, iters=30)
    assert found.censored.tolist() == [False, True]
    assert float(found.widths[0]) == pytest.approx(1.0, abs=1e-8) and float(found.widths[1]) == 3.0


def test_a_centre_above_the_threshold_has_zero_width_and_profiles_are_losses() -> None:
    _, batch_loss = quadratic_bowl(3, 4)
    centre = torch.ones(3, dtype=torch.float64)
    u = unit_rows(4, 3, 5)
    found = radial_widths(batch_loss, centre, u, 0.0, max_radius=1.0, n_grid=4)
    assert found.widths.tolist() == [0.0] * 4
    profiles = radial_profiles(batch_loss, centre, u, found.radii)
    manual = batch_loss(centre + found.radii[2] * u)
    assert torch.allclose(profiles[:, 2], manual) and torch.equal(profiles, found.profiles)


def test_points_are_built_a_budget_at_a_time_with_the_same_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan larger than `POINTS_BYTES` is split into calls that each hold at most that many bytes of
    points, and gives exactly the losses of one call."""
    import lsdb.landscape.radial as radial

    _, batch_loss = quadratic_bowl(6, 0)
    u, center = unit_rows(5, 6, 1), torch.full((6,), 0.1, dtype=torch.float64)
    whole = radial_widths(batch_loss, center, u, 0.7, 3.0, n_grid=8, iters=10)
    sizes: list[int] = []

    def counted(points: torch.Tensor) -> torch.Tensor:
        sizes.append(len(points))
        return batch_loss(points)

    monkeypatch.setattr(radial, "POINTS_BYTES", 3 * 6 * 8)  # three points a call
    split = radial_widths(counted, center, u, 0.7, 3.0, n_grid=8, iters=10)
    assert sizes[:15] == [1] + [3] * 13 + [1] and max(sizes) == 3  # the centre, then the 40-point scan
    assert torch.equal(split.profiles, whole.profiles) and torch.equal(split.widths, whole.widths)
