"""`surface` against direct forward passes and a closed-form quadratic (Li et al. 2018, §3–4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lsdb_surfaces.surface import SURFACE, SurfaceParams
from lsdb_surfaces.trajectory import TRAJECTORY, TrajectoryParams

from lsdb.analyses import Cancelled
from lsdb.analyses.contract import parse_params
from lsdb.errors import BadInput
from lsdb.landscape import ParamLayout, convexity, sharpness
from lsdb.plugin import factory
from tests.plugins.surfaces_factories import (
    LINEAR,
    TEACHER,
    digits_trajectory,
    make_checkpoint,
    make_context,
    make_state,
    reference_loss,
    trajectory_checkpoints,
)

SMALL = {"xnum": 7, "ynum": 5, "xmin": -0.6, "xmax": 0.6, "ymin": -0.4, "ymax": 0.4}


def _final_state() -> dict[str, torch.Tensor]:
    return digits_trajectory()[-1][1]


def _run(center, ctx=None, others=(), trajectory=(), **params):  # type: ignore[no-untyped-def]
    inputs = {
        "center": [make_checkpoint(center, id=1)],
        "others": [make_checkpoint(s, id=i + 2) for i, s in enumerate(others)],
        "trajectory": list(trajectory),
    }
    return SURFACE.run(ctx or make_context(), inputs, SurfaceParams(**params))


def test_centre_of_the_grid_is_the_checkpoints_loss_by_direct_forward_pass() -> None:
    state = _final_state()
    out = _run(state, **SMALL)
    loss, acc = reference_loss(state)
    assert out.arrays["loss"].shape == (5, 7) and out.arrays["acc"].shape == (5, 7)
    assert out.arrays["x"][3] == 0.0 and out.arrays["y"][2] == 0.0
    assert out.arrays["loss"][2, 3] == pytest.approx(loss, rel=1e-10)
    assert out.scalars["center_loss"] == pytest.approx(loss, rel=1e-10)
    assert out.scalars["center_acc"] == pytest.approx(acc, abs=1e-12)
    assert out.scalars["min_loss"] <= out.scalars["center_loss"] <= out.scalars["max_loss"]
    assert 0.0 <= out.scalars["convexity"] <= 1.0 and abs(out.scalars["direction_cosine"]) < 0.5


def test_random_directions_are_filter_normalized_without_biases() -> None:
    state = _final_state()
    out = _run(state, dims=1, xnum=3, save_directions=True)
    d = out.arrays["directions"][0]
    weights = [state["1.weight"].double().numpy(), state["3.weight"].double().numpy()]
    np.testing.assert_allclose(
        np.linalg.norm(d[: 16 * 64].reshape(16, 64), axis=1), np.linalg.norm(weights[0], axis=1), rtol=1e-10
    )
    np.testing.assert_allclose(d[16 * 64 : 16 * 64 + 16], 0.0)  # first bias ignored (ignore=biasbn)
    assert out.arrays["direction_norms"][0] == pytest.approx(np.sqrt(sum((w**2).sum() for w in weights)), rel=1e-10)
    kept = _run(state, dims=1, xnum=3, save_directions=True, ignore="none")
    bias = kept.arrays["directions"][0][16 * 64 : 16 * 64 + 16]
    assert np.linalg.norm(bias) == pytest.approx(float(state["1.bias"].double().norm()), rel=1e-10)


def test_same_seed_same_surface_and_1d_is_the_x_axis_of_2d() -> None:
    state = _final_state()
    a, b = _run(state, **SMALL), _run(state, **SMALL)
    np.testing.assert_array_equal(a.arrays["loss"], b.arrays["loss"])
    other_seed = _run(state, ctx=make_context(seed=5), **SMALL)
    assert not np.allclose(other_seed.arrays["loss"], a.arrays["loss"])
    line = _run(state, dims=1, xnum=7, xmin=-0.6, xmax=0.6)
    assert line.arrays["loss"].shape == (7,) and "y" not in line.arrays
    np.testing.assert_allclose(line.arrays["loss"], a.arrays["loss"][2], rtol=1e-10)


def test_linear_regression_surface_equals_its_closed_form_quadratic() -> None:
    ctx = make_context(model=LINEAR, dataset=TEACHER, loss="mse")
    state = make_state(LINEAR, TEACHER)
    out = _run(state, ctx, save_directions=True, xnum=9, ynum=7, sharpness_radius=0.3)
    d1, d2 = out.arrays["directions"]
    x, y = ctx.dataset.train
    xd, yd = x.double().numpy(), y.double().numpy()[:, 0]
    theta = ParamLayout.from_module(ctx.build_model(state)).flatten(state, dtype=torch.float64).numpy()
    design = np.hstack([xd, np.ones((len(xd), 1))])  # θ = (w, b): prediction = design @ θ
    r0, r1, r2 = design @ theta - yd, design @ d1, design @ d2
    gx, gy = np.meshgrid(out.arrays["x"], out.arrays["y"])
    quad = (
        np.mean(r0**2)
        + 2 * gx * np.mean(r0 * r1)
        + 2 * gy * np.mean(r0 * r2)
        + gx**2 * np.mean(r1**2)
        + 2 * gx * gy * np.mean(r1 * r2)
        + gy**2 * np.mean(r2**2)
    )
    np.testing.assert_allclose(out.arrays["loss"], quad, rtol=1e-10)
    assert np.isnan(out.arrays["acc"]).all() and "center_acc" not in out.scalars
    assert out.scalars["convexity"] == 1.0  # least squares is convex
    expected = sharpness(out.arrays["x"], out.arrays["y"], quad, float(np.mean(r0**2)), 0.3)
    assert expected is not None
    assert (out.scalars["sharpness"], out.scalars["sharpness_max"]) == pytest.approx(expected, rel=1e-9)
    assert d1[-1] == 0.0 and d2[-1] == 0.0  # the bias is not perturbed


def test_checkpoint_directions_put_the_others_at_unit_coordinates() -> None:
    states = [s for _, s in digits_trajectory()]
    center, first, second = states[-1], states[0], states[len(states) // 2]
    out = _run(
        center, others=(first, second), directions="checkpoints", xmin=-1, xmax=2, xnum=4, ymin=-1, ymax=2, ynum=4
    )
    loss = out.arrays["loss"]  # loss[j, i] at (x[i], y[j]); x = y = (-1, 0, 1, 2)
    assert loss[1, 1] == pytest.approx(reference_loss(center)[0], rel=1e-10)
    assert loss[1, 2] == pytest.approx(reference_loss(first)[0], rel=1e-9)
    assert loss[2, 1] == pytest.approx(reference_loss(second)[0], rel=1e-9)
    np.testing.assert_allclose(out.arrays["others_x"], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out.arrays["others_y"], [0.0, 1.0], atol=1e-9)
    ortho = _run(center, others=(first, second), directions="checkpoints", orthogonalize=True, **SMALL)
    assert ortho.scalars["direction_cosine"] == pytest.approx(0.0, abs=1e-9)
    assert ortho.arrays["others_x"][0] == pytest.approx(1.0, abs=1e-9)


def test_pca_directions_give_the_trajectory_plane() -> None:
    checkpoints = trajectory_checkpoints()
    out = _run(_final_state(), trajectory=checkpoints, directions="pca", **SMALL)
    traj = TRAJECTORY.run(make_context(), {"trajectory": checkpoints}, TrajectoryParams(xnum=2, ynum=2))
    path = np.stack([out.arrays["path_x"], out.arrays["path_y"]], axis=1)
    np.testing.assert_allclose(path, traj.arrays["coords"], atol=1e-9)
    np.testing.assert_allclose(path[-1], 0.0, atol=1e-12)
    assert out.scalars["explained_variance_1"] == pytest.approx(traj.scalars["explained_variance_1"])
    assert out.scalars["direction_cosine"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(out.arrays["direction_norms"], 1.0, rtol=1e-12)


def test_inputs_that_do_not_match_the_directions_are_refused() -> None:
    state = _final_state()
    with pytest.raises(BadInput, match="needs 2 'others'"):
        _run(state, directions="checkpoints", others=(state,))
    with pytest.raises(BadInput, match="only used with directions=checkpoints"):
        _run(state, others=(state,))
    with pytest.raises(BadInput, match="at least 3 checkpoints"):
        _run(state, directions="pca", trajectory=trajectory_checkpoints()[:2])
    with pytest.raises(BadInput, match="does not fit the model"):
        _run(state, directions="checkpoints", dims=1, others=({"1.weight": torch.zeros(3)},))


def test_progress_is_reported_and_cancellation_stops_the_run() -> None:
    seen: list[float] = []
    ctx = make_context(progress_callback=lambda f, _m: seen.append(f))
    _run(_final_state(), ctx, **SMALL)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert any(0.05 < f < 1.0 for f in seen)  # the grid reports while it runs
    with pytest.raises(Cancelled):
        _run(_final_state(), make_context(cancel_check=lambda: True), **SMALL)


def test_params_parse_from_strings_and_reject_bad_values() -> None:
    params = parse_params(SURFACE, {"dims": "1", "xnum": "5", "norm": "layer", "subset": "100"})
    assert (params.dims, params.xnum, params.norm, params.subset) == (1, 5, "layer", 100)
    for bad in ({"dims": "3"}, {"norm": "unit"}, {"xnum": "1"}, {"xmin": "2"}, {"sharpness_radius": "-1"}):
        with pytest.raises(BadInput):
            parse_params(SURFACE, bad)


def test_convexity_and_sharpness_of_known_surfaces() -> None:
    xs, ys = np.linspace(-1, 1, 21), np.linspace(-1, 1, 11)
    gx, gy = np.meshgrid(xs, ys)
    assert convexity(gx**2 + 0.5 * gx * gy + gy**2, xs, ys) == 1.0
    assert convexity(gx + 2 * gy, xs, ys) == 1.0  # a plane is (weakly) convex
    assert convexity(gx**2 - gy**2, xs, ys) == 0.0  # a saddle
    assert convexity(-(gx**2) - gy**2, xs, ys) == 0.0
    assert convexity(np.cos(3 * xs), xs) == pytest.approx(np.mean(np.cos(3 * xs[1:-1]) <= 0), abs=0.1)
    assert np.isnan(convexity(xs[:2], xs[:2]))
    bowl = gx**2 + gy**2
    mean, top = sharpness(xs, ys, bowl, 0.0, 0.25)  # type: ignore[misc]
    # within 0.25 of the centre (steps 0.1 in x, 0.2 in y): (±0.1, 0), (±0.2, 0), (0, ±0.2), (±0.1, ±0.2)
    assert top == pytest.approx(0.05) and mean == pytest.approx((2 * 0.01 + 2 * 0.04 + 2 * 0.04 + 4 * 0.05) / 10)
    assert sharpness(xs, ys, bowl, 0.0, 0.05) is None


def _least_squares_hessian(ctx, state):  # type: ignore[no-untyped-def]
    """H = 2/N · Aᵀ A for the mean squared error of a linear model with design A = [x, 1]."""
    x, y = ctx.dataset.train
    design = np.hstack([x.double().numpy(), np.ones((len(x), 1))])
    return design, y.double().numpy()[:, 0], 2.0 / len(x) * design.T @ design


def test_hessian_directions_are_the_closed_form_eigenvectors_of_least_squares() -> None:
    ctx = make_context(model=LINEAR, dataset=TEACHER, loss="mse")
    state = make_state(LINEAR, TEACHER)
    design, yd, hess = _least_squares_hessian(ctx, state)
    values, vectors = np.linalg.eigh(hess)  # ascending
    out = _run(state, ctx, directions="hessian", save_directions=True, xnum=9, ynum=7, hessian_tol=1e-10)
    d1, d2 = out.arrays["directions"]
    assert out.scalars["eigenvalue_1"] == pytest.approx(values[-1], rel=1e-9)
    assert out.scalars["eigenvalue_2"] == pytest.approx(values[-2], rel=1e-9)
    assert abs(d1 @ vectors[:, -1]) == pytest.approx(1.0, abs=1e-9)
    assert abs(d2 @ vectors[:, -2]) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(out.arrays["direction_norms"], 1.0, rtol=1e-12)
    # along eigenvectors the quadratic has no cross term: L0 + x g1 + y g2 + (λ1 x² + λ2 y²)/2
    theta = ParamLayout.from_module(ctx.build_model(state)).flatten(state, dtype=torch.float64).numpy()
    r0 = design @ theta - yd
    gx, gy = np.meshgrid(out.arrays["x"], out.arrays["y"])
    g1, g2 = 2 * np.mean(r0 * (design @ d1)), 2 * np.mean(r0 * (design @ d2))
    quad = np.mean(r0**2) + gx * g1 + gy * g2 + (values[-1] * gx**2 + values[-2] * gy**2) / 2
    np.testing.assert_allclose(out.arrays["loss"], quad, rtol=1e-9)
    extremes = _run(state, ctx, directions="hessian", eigenvectors="extremes", save_directions=True, dims=2,
                    xnum=3, ynum=3, hessian_tol=1e-10)
    assert extremes.scalars["eigenvalue_2"] == pytest.approx(values[0], rel=1e-6, abs=1e-9 * values[-1])
    assert abs(extremes.arrays["directions"][1] @ vectors[:, 0]) == pytest.approx(1.0, abs=1e-6)


def test_the_surface_curves_by_the_top_eigenvalue_along_the_top_eigenvector() -> None:
    """Central second difference of the plotted line at the centre = λ1 (a property of any C³ loss: a tanh MLP)."""
    smooth = {"name": "mlp", "kwargs": {"widths": [16], "activation": "tanh"}}
    ctx, state = make_context(model=smooth), make_state(smooth)
    h = 1e-3
    out = _run(state, ctx, directions="hessian", dims=1, xnum=3, xmin=-h, xmax=h, hessian_tol=1e-8)
    left, mid, right = out.arrays["loss"]
    curvature = (left - 2 * mid + right) / h**2
    assert curvature == pytest.approx(out.scalars["eigenvalue_1"], rel=1e-5)
    again = _run(state, ctx, directions="hessian", dims=1, xnum=3, xmin=-h, xmax=h, hessian_tol=1e-8)
    np.testing.assert_array_equal(again.arrays["loss"], out.arrays["loss"])  # deterministic (seeded, signed)


def test_hessian_directions_refuse_extremes_in_more_than_two_dimensions_and_bad_choices() -> None:
    with pytest.raises(BadInput):
        parse_params(SURFACE, {"directions": "hessian", "eigenvectors": "middle"})
    with pytest.raises(BadInput, match="fewer than 2 dimensions"):
        tiny = {"name": "tests.plugins.test_surfaces_surface:one_weight", "kwargs": {}}
        _run(make_state(tiny, TEACHER), make_context(model=tiny, dataset=TEACHER, loss="mse"), directions="hessian")


@factory
def one_weight(input_shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    """A model with a single parameter (y = w·x_0): its Hessian has one dimension."""
    return _Scale()


class _Scale(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :1] * self.w
