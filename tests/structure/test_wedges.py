"""The wedge toy model (Fort & Jastrzebski 2019, §3): the surrogate loss and its three experiments."""

from __future__ import annotations

import itertools

import pytest
import torch

from lsdb.landscape.tunnels import two_block_split
from lsdb.landscape.wedges import (
    hyperplane_experiment,
    radial_experiment,
    tunnel_experiment,
    wedge_loss,
    wedge_point,
)


def brute_force_distance(x: torch.Tensor, n: int) -> float:
    """The distance to the union of the subspaces {x_S = 0} over every n-subset S, by enumeration:
    the projection onto {x_S = 0} zeroes x_S, so the distance to that subspace is ‖x_S‖."""
    best = float("inf")
    for subset in itertools.combinations(range(len(x)), n):
        projected = x.clone()
        projected[list(subset)] = 0.0
        best = min(best, float(torch.linalg.vector_norm(x - projected)))
    return best


@pytest.mark.parametrize(("dim", "n"), [(5, 1), (6, 2), (7, 3), (6, 6)])
def test_surrogate_equals_brute_force_distance_to_the_wedges(dim: int, n: int) -> None:
    gen = torch.Generator().manual_seed(dim * 10 + n)
    points = torch.randn(20, dim, generator=gen, dtype=torch.float64)
    got = wedge_loss(points, n)
    for x, value in zip(points, got, strict=True):
        assert float(value) == pytest.approx(brute_force_distance(x, n), abs=1e-12)


def test_a_wedge_point_has_zero_loss_and_keeps_its_margin() -> None:
    x = wedge_point(12, [0, 3, 5], torch.Generator().manual_seed(0), margin=1.0)
    assert float(wedge_loss(x, 3)) == 0.0
    others = [i for i in range(12) if i not in (0, 3, 5)]
    assert bool((x[others].abs() >= 1.0).all())


def test_random_subspaces_reach_zero_loss_from_d_equal_n_and_not_below() -> None:
    n = 4
    run = hyperplane_experiment(24, n, [n - 1, n, n + 2], trials=4, steps=30, seed=0)
    below, at_n, above = run.final_loss
    assert bool((below > 1e-3).all()), below
    assert bool((at_n < 1e-9).all()) and bool((above < 1e-9).all())


def test_gradient_descent_on_subspaces_shows_the_same_threshold() -> None:
    run = hyperplane_experiment(16, 3, [2, 6], trials=3, steps=400, seed=1, method="gd", lr=1.0)
    assert bool((run.final_loss[0] > 1e-3).all()) and bool((run.final_loss[1] < 1e-6).all())
    assert bool((run.curves[:, 1:] <= run.curves[:, :-1] + 1e-12).all())  # never increases


def test_wedge_tunnel_has_exact_ends_lower_loss_and_two_clusters() -> None:
    found = tunnel_experiment(24, 3, n_pieces=8, steps=150, lr=0.5, seed=0)
    path = found.path
    assert torch.equal(path.knots[0], path.line[0]) and torch.equal(path.knots[-1], path.line[-1])
    assert float(found.path_loss[0]) == 0.0 and float(found.path_loss[-1]) == 0.0
    assert float(found.path_loss.max()) < 0.5 * float(found.line_loss.max())
    assert float(path.history[:, -1].max()) < 1e-6  # every knot reached a wedge
    wedge = found.knot_wedge[1:-1].tolist()
    on_a = [i for i, w in enumerate(wedge) if w == 0]
    on_b = [i for i, w in enumerate(wedge) if w == 1]
    assert on_a and on_b and wedge[0] == 0 and wedge[-1] == 1  # near each end, that end's wedge
    cos = found.cosines
    for group in (on_a, on_b):  # one deviation direction per wedge (up to scale)
        assert float(cos[group][:, group].min()) > 0.99
    assert float(cos[on_a][:, on_b].max()) < 0.9
    split, contrast = two_block_split(cos)
    assert max(on_a) < split <= min(on_b) and contrast > 0.2


def test_whole_path_optimization_removes_the_barrier_between_the_clusters() -> None:
    knots_only = tunnel_experiment(24, 3, n_pieces=6, steps=40, lr=0.5, seed=0)
    whole = tunnel_experiment(24, 3, n_pieces=6, steps=40, lr=0.5, seed=0, path_steps=150)
    assert float(whole.path_loss.max()) < 0.2 * float(knots_only.path_loss.max())


def test_radial_widths_from_a_wedge_are_nearly_direction_independent() -> None:
    dim, n, tau = 400, 40, 0.25
    found = radial_experiment(dim, n, n_directions=24, threshold=tau, max_radius=3.0, seed=0)
    widths = found.widths
    assert not bool(found.censored.any())
    assert float(widths.std() / widths.mean()) < 0.2
    assert float(widths.mean()) == pytest.approx(tau * (dim / n) ** 0.5, rel=0.1)  # L(r u) ≈ r ‖u_S‖
