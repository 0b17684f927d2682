"""Figures of this plugin's results, in the style of Li et al. 2018 (registered in `plugin`).

Each renderer takes a `ResultView` and returns a `matplotlib.figure.Figure` built with
`lsdb.plotting`: `interpolate` as Fig. 2 (loss and accuracy on twin axes, train solid and
test dashed), `surface` as contours (Fig. 1, 5), filled contours or a 3D plot (a line plot
for a 1D surface), `trajectory` as a path over loss contours with the explained variance in
the axis labels (Fig. 9).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from lsdb.plotting import contour_figure, curves_figure, input_names, pc_label, plane_axis_labels, surface3d_figure
from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]


def render_interpolate(view: ResultView) -> Figure:
    """Loss and accuracy against α with the two checkpoints marked (Li et al. 2018, Fig. 2)."""
    a = view.arrays
    splits = [s for s in ("train", "test") if f"{s}_loss" in a]
    start = (input_names(view, "start") or ["start"])[0]
    end = (input_names(view, "end") or ["end"])[0]
    return curves_figure(
        a["alpha"],
        {s: a[f"{s}_loss"] for s in splits},
        {s: a[f"{s}_acc"] for s in splits if f"{s}_acc" in a},
        xlabel="α",
        title=view.title,
        marks=[(0.0, start), (1.0, end)],
    )


def _render_surface(view: ResultView, kind: str) -> Figure:
    a = view.arrays
    xlabel, ylabel = plane_axis_labels(view)
    split = str(view.params.get("split", "train"))
    if "y" not in a:
        return curves_figure(
            a["x"],
            {split: a["loss"]},
            {split: a["acc"]} if "acc" in a else None,
            xlabel=xlabel,
            title=view.title,
            marks=[(0.0, "center")],
        )
    if kind == "3d":
        return surface3d_figure(
            a["x"], a["y"], a["loss"], xlabel=xlabel, ylabel=ylabel, zlabel=f"{split} loss", title=view.title
        )
    marks = [(0.0, 0.0, "center")]
    if "others_x" in a and "others_y" in a:
        names = input_names(view, "others") or ["d1", "d2"]
        marks += [(float(x), float(y), n) for x, y, n in zip(a["others_x"], a["others_y"], names, strict=False)]
    path = (a["path_x"], a["path_y"]) if "path_x" in a and "path_y" in a else None
    return contour_figure(
        a["x"],
        a["y"],
        a["loss"],
        filled=kind == "filled",
        xlabel=xlabel,
        ylabel=ylabel,
        zlabel=f"{split} loss",
        title=view.title,
        path=path,
        marks=marks,
    )


def render_surface_contour(view: ResultView) -> Figure:
    """Contour lines with labelled levels (Li et al. 2018, Fig. 1, 5); a line plot for dims=1."""
    return _render_surface(view, "contour")


def render_surface_filled(view: ResultView) -> Figure:
    """Filled contours with a colour bar; a line plot for dims=1."""
    return _render_surface(view, "filled")


def render_surface_3d(view: ResultView) -> Figure:
    """A 3D surface plot (Li et al. 2018, Fig. 5); a line plot for dims=1."""
    return _render_surface(view, "3d")


def _render_trajectory(view: ResultView, filled: bool) -> Figure:
    a = view.arrays
    ratios = a.get("explained_variance_ratio", np.zeros(0))
    coords = a["coords"]
    labels = [str(int(s)) for s in a["steps"]] if "steps" in a else None
    split = str(view.params.get("split", "train"))
    return contour_figure(
        a["x"],
        a["y"],
        a["loss"],
        filled=filled,
        xlabel=pc_label(ratios, 0),
        ylabel=pc_label(ratios, 1),
        zlabel=f"{split} loss",
        title=view.title,
        path=(coords[:, 0], coords[:, 1]),
        path_labels=labels,
    )


def render_trajectory(view: ResultView) -> Figure:
    """The path over loss contours, explained variance in the axis labels (Li et al. 2018, Fig. 9)."""
    return _render_trajectory(view, filled=False)


def render_trajectory_filled(view: ResultView) -> Figure:
    """The path over filled loss contours with a colour bar."""
    return _render_trajectory(view, filled=True)


#: (analysis, renderer name, renderer): what `plugin.register_renderers` registers.
RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("interpolate", "default", render_interpolate),
    ("surface", "default", render_surface_contour),
    ("surface", "contour", render_surface_contour),
    ("surface", "filled", render_surface_filled),
    ("surface", "3d", render_surface_3d),
    ("trajectory", "default", render_trajectory),
    ("trajectory", "filled", render_trajectory_filled),
)
