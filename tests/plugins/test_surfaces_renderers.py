"""The plugin's hooks and figures: every renderer draws a result of its analysis and saves it."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest
from lsdb_surfaces import plugin
from lsdb_surfaces.interpolate import INTERPOLATE, InterpolateParams
from lsdb_surfaces.renderers import (
    render_interpolate,
    render_surface_3d,
    render_surface_contour,
    render_surface_filled,
    render_trajectory,
    render_trajectory_filled,
)
from lsdb_surfaces.surface import SURFACE, SurfaceParams
from lsdb_surfaces.trajectory import TRAJECTORY, TrajectoryParams
from matplotlib.figure import Figure

from lsdb import hookspecs
from lsdb.analyses import AnalysisSpec, ResultView
from lsdb.plotting import save_figure
from tests.plugins.surfaces_factories import (
    LINEAR,
    TEACHER,
    as_view,
    digits_trajectory,
    make_checkpoint,
    make_context,
    make_state,
    trajectory_checkpoints,
)

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


def _labels(fig: Figure) -> list[list[str]]:
    return [[ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")] for ax in fig.axes]


@pytest.fixture(scope="module")
def interpolation() -> ResultView:
    states = digits_trajectory()
    inputs = {"start": [make_checkpoint(states[0][1], step=0)], "end": [make_checkpoint(states[-1][1], step=24)]}
    params = InterpolateParams(steps=7)
    rows = [
        {"role": "start", "position": 0, "run": "r", "step": 0},
        {"role": "end", "position": 0, "run": "r", "step": 24},
    ]
    return as_view(INTERPOLATE.run(make_context(), inputs, params), "interpolate", params, rows)


@pytest.fixture(scope="module")
def plane() -> ResultView:
    params = SurfaceParams(directions="pca", xnum=6, ynum=5)
    inputs = {"center": [make_checkpoint(digits_trajectory()[-1][1])], "trajectory": trajectory_checkpoints()}
    return as_view(SURFACE.run(make_context(), inputs, params), "surface", params)


def test_the_plugin_registers_three_analyses_and_a_default_renderer_each() -> None:
    pm = pluggy.PluginManager("lsdb")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    pm.check_pending()
    specs: list[AnalysisSpec] = []
    renderers: dict[tuple[str, str], object] = {}
    pm.hook.register_analyses(register=specs.append)
    pm.hook.register_renderers(
        register=lambda analysis, fn, name="default": renderers.__setitem__((analysis, name), fn)
    )
    assert [s.name for s in specs] == ["interpolate", "surface", "trajectory"]
    assert all(isinstance(s, AnalysisSpec) and s.version == 1 and s.description for s in specs)
    assert {a for a, n in renderers if n == "default"} == {"interpolate", "surface", "trajectory"}
    assert {n for a, n in renderers if a == "surface"} == {"default", "contour", "filled", "3d"}


def test_interpolation_figure_has_loss_and_accuracy_axes(interpolation: ResultView, tmp_path: Path) -> None:
    fig = render_interpolate(interpolation)
    assert _labels(fig) == [["train loss", "test loss"], ["train accuracy", "test accuracy"]]
    assert [ln.get_linestyle() for ln in fig.axes[0].get_lines()[:2]] == ["-", "--"]
    for fmt, magic in MAGIC.items():
        path = save_figure(fig, tmp_path / f"interp.{fmt}")
        assert path.read_bytes().startswith(magic)


def test_regression_interpolation_has_one_axis() -> None:
    ctx = make_context(model=LINEAR, dataset=TEACHER, loss="mse")
    inputs = {
        "start": [make_checkpoint(make_state(LINEAR, TEACHER, 0))],
        "end": [make_checkpoint(make_state(LINEAR, TEACHER, 1))],
    }
    params = InterpolateParams(steps=5, splits=("train",))
    fig = render_interpolate(as_view(INTERPOLATE.run(ctx, inputs, params), "interpolate", params))
    assert _labels(fig) == [["train loss"]]


def test_surface_figures(plane: ResultView, tmp_path: Path) -> None:
    contour = render_surface_contour(plane)
    assert len(contour.axes) == 1 and contour.axes[0].get_xlabel().startswith("1st PC: ")
    assert len(contour.axes[0].collections) >= 1 and len(contour.axes[0].texts) >= 1  # labelled levels
    filled = render_surface_filled(plane)
    assert len(filled.axes) == 2  # the plot and its colour bar
    surface3d = render_surface_3d(plane)
    assert surface3d.axes[0].name == "3d"
    save_figure(surface3d, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes().startswith(MAGIC["png"])


def test_one_dimensional_surface_draws_a_line() -> None:
    params = SurfaceParams(dims=1, xnum=5)
    out = SURFACE.run(make_context(), {"center": [make_checkpoint(digits_trajectory()[-1][1])]}, params)
    view = as_view(out, "surface", params)
    for render in (render_surface_contour, render_surface_filled, render_surface_3d):
        assert _labels(render(view)) == [["train loss"], ["train accuracy"]]


def test_trajectory_figure_draws_the_path_over_contours(tmp_path: Path) -> None:
    params = TrajectoryParams(xnum=5, ynum=5)
    view = as_view(
        TRAJECTORY.run(make_context(), {"trajectory": trajectory_checkpoints()}, params), "trajectory", params
    )
    fig = render_trajectory(view)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("1st PC: ") and ax.get_ylabel().startswith("2nd PC: ")
    path = ax.get_lines()[0]
    assert len(path.get_xdata()) == len(view.arrays["steps"])
    assert len(render_trajectory_filled(view).axes) == 2
    save_figure(fig, tmp_path / "t.svg")
    assert b"<svg" in (tmp_path / "t.svg").read_bytes()


def test_a_plane_of_hessian_eigenvectors_is_labelled_with_their_eigenvalues() -> None:
    from lsdb.plotting import plane_axis_labels

    state = digits_trajectory()[-1][1]
    for which, names in (("top", ("λ1", "λ2")), ("extremes", ("λmax", "λmin"))):
        params = SurfaceParams(directions="hessian", eigenvectors=which, xnum=3, ynum=3)
        view = as_view(SURFACE.run(make_context(), {"center": [make_checkpoint(state)]}, params), "surface", params)
        xlabel, ylabel = plane_axis_labels(view)
        values = view.arrays["eigenvalues"]
        assert xlabel == f"x (Hessian eigenvector, {names[0]} = {values[0]:.3g})"
        assert ylabel == f"y (Hessian eigenvector, {names[1]} = {values[1]:.3g})"
