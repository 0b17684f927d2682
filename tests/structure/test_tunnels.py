"""`lsdb.landscape.tunnels`: Fort & Jastrzebski's hyperplane-constrained tunnels, the whole-path option,
the m-connector, and the deviation cosines, on float64 toy objectives and a tiny digits MLP."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lsdb.data import load_dataset
from lsdb.landscape import ParamLayout
from lsdb.landscape.tunnels import (
    connector,
    cosine_matrix,
    hull_basis,
    line_points,
    optimize_path,
    orthonormal_rows,
    polyline,
    project_out,
    simplex_grid,
    tunnel,
    two_block_split,
    unit_normal,
)
from lsdb.models import build_model


@pytest.fixture(scope="module")
def digits_objective():  # type: ignore[no-untyped-def]
    """Full-batch cross-entropy of a float64 8-unit MLP on 300 digits, and two of its points."""
    data = load_dataset("digits")
    x, y = data.train[0][:300].double(), data.train[1][:300]
    model = build_model("mlp:widths=[8]", data.input_shape, data.num_classes, seed=0).double().eval()
    layout = ParamLayout.from_module(model)

    def objective(theta: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, layout.unflatten(theta), (x,)), y)

    a = layout.flatten(model)
    b = layout.flatten(build_model("mlp:widths=[8]", data.input_shape, data.num_classes, seed=1).double())
    return objective, a, b


def hyperplane_offsets(knots: torch.Tensor, line: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    return ((knots - line) @ normal).abs()


def test_line_points_have_exact_ends_and_even_spacing() -> None:
    a, b = torch.randn(7, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    points, t = line_points(a, b, 5)
    assert torch.equal(points[0], a) and torch.equal(points[-1], b)
    assert torch.allclose(points[2], a + 0.4 * (b - a)) and t.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1])


def test_each_knot_stays_in_its_hyperplane_and_the_ends_are_exact(digits_objective) -> None:  # type: ignore[no-untyped-def]
    objective, a, b = digits_objective
    path = tunnel(objective, a, b, n_pieces=4, steps=25, lr=0.1)
    assert torch.equal(path.knots[0], a) and torch.equal(path.knots[-1], b)
    assert float(hyperplane_offsets(path.knots, path.line, unit_normal(a, b)).max()) < 1e-6
    assert float(path.deviations.norm(dim=1).min()) > 1e-3  # the knots did move
    for k in range(1, 4):  # and their loss fell below the straight line's at the same t
        assert float(objective(path.knots[k])) < float(objective(path.line[k]))
    assert bool((path.history[:, -1] < path.history[:, 0]).all())


def test_whole_path_optimization_keeps_knots_in_their_hyperplanes(digits_objective) -> None:  # type: ignore[no-untyped-def]
    objective, a, b = digits_objective
    first = tunnel(objective, a, b, n_pieces=3, steps=5, lr=0.1)
    path = optimize_path(objective, first, steps=15, lr=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(path.knots[0], a) and torch.equal(path.knots[-1], b)
    assert float(hyperplane_offsets(path.knots, path.line, unit_normal(a, b)).max()) < 1e-6
    assert path.history.shape == (2, 15) and not torch.equal(path.knots, first.knots)


def test_polyline_passes_through_every_knot_at_its_t() -> None:
    knots = torch.randn(4, 5, dtype=torch.float64)
    points, t = polyline(knots, 3)
    assert points.shape == (10, 5) and t[0] == 0 and t[-1] == 1
    for k in range(4):
        assert torch.equal(points[3 * k], knots[k]) and t[3 * k] == pytest.approx(k / 3)
    assert torch.allclose(points[4], knots[1] + (knots[2] - knots[1]) / 3)


def test_cosine_matrix_and_two_block_split_find_two_clusters() -> None:
    e1, e2 = torch.eye(6, dtype=torch.float64)[:2]
    noise = 0.05 * torch.randn(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    vectors = torch.stack([e1, e1, e1, e2, e2]) + noise
    cos = cosine_matrix(vectors)
    assert torch.allclose(cos, cos.T) and torch.equal(cos.diagonal(), torch.ones(5, dtype=torch.float64))
    assert float(cos[0, 1]) > 0.95 and abs(float(cos[0, 4])) < 0.2
    split, contrast = two_block_split(cos)
    assert split == 3 and contrast > 0.8
    assert float(cosine_matrix(torch.zeros(2, 3))[0, 1]) == 0.0
    assert two_block_split(torch.ones(1, 1)) == (0, 0.0)


def test_simplex_grid_counts_sums_and_exact_vertices() -> None:
    for m, r in ((2, 4), (3, 4), (4, 3)):
        grid = simplex_grid(m, r)
        assert len(grid) == math.comb(r + m - 1, m - 1)
        assert torch.allclose(grid.sum(dim=1), torch.ones(len(grid), dtype=torch.float64))
        assert int((grid == 1.0).any(dim=1).sum()) == m and bool((grid >= 0).all())


def test_orthonormal_rows_drop_dependent_vectors_and_project_out() -> None:
    v = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    q = orthonormal_rows(v)
    assert q.shape == (2, 3) and torch.allclose(q @ q.T, torch.eye(2, dtype=torch.float64))
    w = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(project_out(w, q) @ v.T, torch.zeros(3, dtype=torch.float64), atol=1e-12)


def test_m_connector_points_move_only_normal_to_the_hull(digits_objective) -> None:  # type: ignore[no-untyped-def]
    objective, a, b = digits_objective
    c = a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    vertices = torch.stack([a, b, c])
    weights = simplex_grid(3, 2)
    hull, out, history = connector(objective, vertices, weights, steps=6, lr=0.1)
    basis = hull_basis(vertices)
    assert torch.allclose(hull, weights @ vertices)
    assert float(((out - hull) @ basis.T).abs().max()) < 1e-6  # no motion within the hull
    for i, w in enumerate(weights):
        if (w == 1.0).any():
            assert torch.equal(out[i], vertices[int(w.argmax())]) and bool((history[i] == 0).all())
        else:
            assert float(objective(out[i])) < float(objective(hull[i]))
