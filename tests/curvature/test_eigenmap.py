"""`eigenmap` run directly: dense references at grid points, warm against cold starts, tiles against the whole."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from lsdb_curvature.eigenmap import (
    EIGENMAP,
    EigenmapParams,
    merge_eigenmap,
    run_eigenmap,
    snake_order,
    tile_eigenmap,
)
from lsdb_curvature.renderers import render_eigenmap, render_eigenmap_lambda_max, render_eigenmap_lambda_min
from lsdb_surfaces.surface import SurfaceParams, run_surface

from lsdb.analyses import AnalysisOutput
from lsdb.analyses.contract import parse_params
from lsdb.errors import BadInput
from lsdb.landscape import ParamLayout
from lsdb.plotting import save_figure
from tests.curvature.curvature_factories import as_view, digits_reference, make_checkpoint, make_context, make_state

SUBSET = 40
GRID = {"xnum": 4, "ynum": 3, "xmin": -0.5, "xmax": 1.0, "ymin": -1.0, "ymax": 1.0, "subset": SUBSET}


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return make_state(seed=2)


def _run(state: dict[str, torch.Tensor], **params: object) -> tuple[EigenmapParams, AnalysisOutput]:
    p = EigenmapParams(**{**GRID, **params})  # type: ignore[arg-type]
    return p, run_eigenmap(make_context(), {"center": [make_checkpoint(state)]}, p)


def test_points_equal_the_dense_hessian_on_the_plane_of_surface(state: dict[str, torch.Tensor]) -> None:
    params, out = _run(state, tol=1e-8, max_iter=400)
    plane = run_surface(make_context(), {"center": [make_checkpoint(state)]},
                        SurfaceParams(xnum=2, ynum=2, save_directions=True, subset=SUBSET))
    dirs = torch.as_tensor(plane.arrays["directions"])
    layout = ParamLayout.from_state_dict(state).parameters_only()
    theta = layout.flatten(state, dtype=torch.float64)
    for i, j in [(0, 0), (2, 3), (1, 1)]:
        point = theta + out.arrays["x"][j] * dirs[0] + out.arrays["y"][i] * dirs[1]
        moved = {**state, **{k: v.clone() for k, v in layout.unflatten(point).items()}}
        values = torch.linalg.eigvalsh(digits_reference(moved, SUBSET)[1])
        assert out.arrays["lambda_max"][i, j] == pytest.approx(float(values[-1]), rel=1e-6)
        assert out.arrays["lambda_min"][i, j] == pytest.approx(float(values[0]), rel=1e-6)
        assert out.arrays["ratio"][i, j] == pytest.approx(abs(float(values[0] / values[-1])), rel=1e-5)
    assert out.arrays["lambda_max"].shape == (3, 4) and out.scalars["points"] == 12
    assert out.scalars["unconverged"] == 0 and out.scalars["center_ratio"] == pytest.approx(out.arrays["ratio"][1, 1])


def test_a_map_along_the_top_eigenvectors_has_the_hessians_eigenvalues_at_its_centre(
        state: dict[str, torch.Tensor]) -> None:
    """directions=hessian: the plane of the top two eigenvectors (dense reference at the centre)."""
    params, out = _run(state, directions="hessian", xnum=3, ynum=3, xmin=-0.2, xmax=0.2, ymin=-0.2, ymax=0.2,
                       tol=1e-8, max_iter=400, hessian_tol=1e-10)
    values = torch.linalg.eigvalsh(digits_reference(state, SUBSET)[1])
    assert out.scalars["eigenvalue_1"] == pytest.approx(float(values[-1]), rel=1e-8)
    assert out.scalars["eigenvalue_2"] == pytest.approx(float(values[-2]), rel=1e-8)
    assert out.arrays["lambda_max"][1, 1] == pytest.approx(float(values[-1]), rel=1e-6)
    assert out.arrays["lambda_min"][1, 1] == pytest.approx(float(values[0]), rel=1e-6)
    np.testing.assert_allclose(out.arrays["direction_norms"], 1.0, rtol=1e-12)


def test_a_warm_started_map_equals_the_cold_started_one_within_tolerance(state: dict[str, torch.Tensor]) -> None:
    tol = 1e-4
    _, warm = _run(state, tol=tol, max_iter=400)
    _, cold = _run(state, tol=tol, max_iter=400, warm_start=False)
    scale = np.abs(cold.arrays["lambda_max"])
    np.testing.assert_allclose(warm.arrays["lambda_max"], cold.arrays["lambda_max"], rtol=2 * tol)
    assert (np.abs(warm.arrays["lambda_min"] - cold.arrays["lambda_min"]) <= 2 * tol * scale).all()
    assert warm.scalars["hvp_count"] < cold.scalars["hvp_count"]
    assert (warm.arrays["hvps"] >= 8).all()  # min_iter


def test_tiles_merge_into_the_whole_map(state: dict[str, torch.Tensor]) -> None:
    params, whole = _run(state, tol=1e-6, max_iter=400, warm_start=False)
    tiles = tile_eigenmap(params, tile_size=5)  # 4 columns: one row per tile
    assert tiles == [{"rows": [0, 1]}, {"rows": [1, 2]}, {"rows": [2, 3]}]
    assert tile_eigenmap(params, tile_size=12) == []
    assert tile_eigenmap(dataclasses.replace(params, rows=[0, 1]), 5) == []
    parts = [_run(state, tol=1e-6, max_iter=400, warm_start=False, **t)[1] for t in tiles]
    corner = _run(state, tol=1e-6, max_iter=400, warm_start=False, rows=[1, 3], cols=[2, 4])[1]
    assert corner.arrays["ratio"].shape == (2, 2)
    np.testing.assert_array_equal(corner.arrays["ratio"], whole.arrays["ratio"][1:3, 2:4])
    merged = merge_eigenmap(params, parts)
    for name in ("lambda_max", "lambda_min", "ratio", "loss", "hvps"):
        np.testing.assert_array_equal(merged.arrays[name], whole.arrays[name])
    assert merged.scalars == pytest.approx(whole.scalars)


def test_snake_order_visits_neighbours_one_after_another() -> None:
    order = snake_order((1, 4), (2, 5))
    assert order[:4] == [(1, 2), (1, 3), (1, 4), (2, 4)] and len(order) == 9 == len(set(order))
    assert all(abs(a - c) + abs(b - d) == 1 for (a, b), (c, d) in zip(order, order[1:], strict=False))


def test_renderers_draw_whole_maps_and_tiles(state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    for extra in ({}, {"rows": [1, 3], "cols": [0, 2]}):
        params, out = _run(state, tol=1e-3, **extra)
        view = as_view(out, "eigenmap", params)
        for render in (render_eigenmap, render_eigenmap_lambda_max, render_eigenmap_lambda_min):
            path = save_figure(render(view), tmp_path / f"{render.__name__}-{len(extra)}.png")
            assert path.read_bytes().startswith(b"\x89PNG")


def test_parameters_are_validated() -> None:
    with pytest.raises(BadInput, match="rows"):
        parse_params(EIGENMAP, {"rows": "[3, 2]"})
    with pytest.raises(BadInput, match="xmin"):
        parse_params(EIGENMAP, {"xmin": "1", "xmax": "0"})
    assert parse_params(EIGENMAP, {"cols": "[0, 5]", "xnum": "5"}).cols == [0, 5]
