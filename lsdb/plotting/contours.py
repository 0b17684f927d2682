"""2D loss surfaces: contour lines with labelled levels, filled contours, 3D surfaces, a path on top.

The figures of Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets"): contour
plots of a surface (Figs. 1, 5, 6), 3D surface plots (Fig. 5) and an optimization path
projected onto PCA directions drawn over the loss contours (§6, Fig. 9).

Arrays follow matplotlib's convention: ``z`` has shape ``(len(y), len(x))``, ``z[j, i]``
being the value at ``(x[i], y[j])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

CMAP = "viridis"
PATH_COLOR = "tab:red"


def contour_levels(z: ArrayLike, n: int = 20) -> np.ndarray:
    """`n` increasing levels spanning the finite values of `z`.

    Geometrically spaced when the values are positive and span more than a factor of 20 (a
    loss surface rises steeply towards the edges of its grid), evenly spaced otherwise.
    """
    values = np.asarray(z, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.linspace(0.0, 1.0, n)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        pad = max(abs(lo) * 1e-3, 1e-12)
        return np.array([lo - pad, lo, lo + pad])
    if lo > 0 and hi / lo > 20:
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def contour_figure(
    x: ArrayLike,
    y: ArrayLike,
    z: ArrayLike,
    *,
    filled: bool = False,
    levels: int | Sequence[float] = 20,
    xlabel: str = "x",
    ylabel: str = "y",
    zlabel: str = "loss",
    title: str | None = None,
    path: tuple[ArrayLike, ArrayLike] | None = None,
    path_labels: Sequence[str] | None = None,
    marks: Sequence[tuple[float, float, str]] = (),
) -> Figure:
    """Contour lines with labelled levels (or, `filled`, filled contours with a colour bar).

    `path` overlays a polyline ``(xs, ys)`` (see `add_path`); `marks` draws a labelled star at
    each ``(x, y, label)``. A filled figure has two axes (the plot and its colour bar).
    """
    xs, ys, zs = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(z, dtype=float)
    if zs.shape != (len(ys), len(xs)):
        raise ValueError(f"z must have shape (len(y), len(x)) = {(len(ys), len(xs))}, got {zs.shape}")
    lv = contour_levels(zs, levels) if isinstance(levels, int) else np.asarray(levels, dtype=float)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(zs)
    if filled:
        norm = BoundaryNorm(lv, ncolors=256, extend="max")
        cs = ax.contourf(xs, ys, masked, levels=lv, cmap=CMAP, norm=norm, extend="max")
        fig.colorbar(cs, ax=ax, label=zlabel)
    else:
        norm = BoundaryNorm(lv, ncolors=256)
        cs = ax.contour(xs, ys, masked, levels=lv, cmap=CMAP, norm=norm, linewidths=0.8)
        ax.clabel(cs, inline=True, fontsize=6, fmt="%.3g")
    if path is not None:
        add_path(ax, path[0], path[1], path_labels)
    for px, py, label in marks:
        ax.plot([px], [py], marker="*", color="black", markersize=9, linestyle="none")
        ax.annotate(label, (px, py), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def add_path(ax: Axes, xs: ArrayLike, ys: ArrayLike, labels: Sequence[str] | None = None, max_labels: int = 8) -> None:
    """Draw a path as dots joined by lines, its start as a circle and its end as a star (Li et al. 2018, Fig. 9).

    Up to `max_labels` evenly spaced points (always the first and last) are annotated with `labels`.
    """
    px, py = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    ax.plot(px, py, color=PATH_COLOR, marker=".", markersize=4, linewidth=1.0)
    ax.plot(px[:1], py[:1], marker="o", color=PATH_COLOR, markersize=6, linestyle="none")
    ax.plot(px[-1:], py[-1:], marker="*", color=PATH_COLOR, markersize=10, linestyle="none")
    if labels is not None and len(px):
        picks = np.unique(np.linspace(0, len(px) - 1, min(max_labels, len(px))).round().astype(int))
        for i in picks:
            ax.annotate(
                labels[i], (px[i], py[i]), xytext=(3, 3), textcoords="offset points", fontsize=6, color=PATH_COLOR
            )


def surface3d_figure(
    x: ArrayLike,
    y: ArrayLike,
    z: ArrayLike,
    *,
    xlabel: str = "x",
    ylabel: str = "y",
    zlabel: str = "loss",
    title: str | None = None,
    zmax: float | None = None,
) -> Figure:
    """A 3D surface plot (Li et al. 2018, Fig. 5); values above `zmax` are clipped to it."""
    xs, ys, zs = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(z, dtype=float)
    if zs.shape != (len(ys), len(xs)):
        raise ValueError(f"z must have shape (len(y), len(x)) = {(len(ys), len(xs))}, got {zs.shape}")
    if zmax is not None:
        zs = np.minimum(zs, zmax)
    fig = Figure(figsize=(6.0, 4.8), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    ax.set_box_aspect(None, zoom=0.85)  # room for the axis labels
    gx, gy = np.meshgrid(xs, ys)
    ax.plot_surface(gx, gy, np.ma.masked_invalid(zs), cmap=CMAP, linewidth=0, antialiased=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel(zlabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
