"""Figures of this plugin's results (registered in `plugin`), built with matplotlib's object API.

* `hessian`: the eigenvalue density on a log scale with the top eigenvalues marked, as in
  Ghorbani et al. 2019 (Fig. 1) and PyHessian (Yao et al. 2020, Fig. 1); without a density,
  the computed eigenvalues and their error bounds.
* `hessian-trajectory`: the top eigenvalues against the training step, with their error bounds
  (progressive sharpening, Cohen et al. 2021, Fig. 2), and the loss on a second axis.
* `eigenmap`: |λmin/λmax| as a heat map with the loss contours on top, as in Li et al. 2018,
  Fig. 7 (blue: convex-looking, negligible negative curvature; yellow: strong negative
  curvature); also λmax and λmin maps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from lsdb.plotting import contour_levels, plane_axis_labels
from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]
CMAP = "viridis"


def _eigenvalue_marks(ax: object, view: ResultView) -> None:
    values = np.asarray(view.arrays.get("eigenvalues", []), dtype=float)
    for i, v in enumerate(values):
        ax.axvline(v, color="tab:red", linewidth=0.8, linestyle="--", label="top eigenvalues" if i == 0 else None)
    if "lambda_min" in view.scalars:
        ax.axvline(view.scalars["lambda_min"], color="tab:purple", linewidth=0.8, linestyle=":", label="λmin")


def render_hessian(view: ResultView) -> Figure:
    """The spectral density on a log axis (Ghorbani et al. 2019, Fig. 1) or, without one, the eigenvalues."""
    a = view.arrays
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if "density" in a:
        grid, density = np.asarray(a["density_grid"], dtype=float), np.asarray(a["density"], dtype=float)
        floor = max(float(density.max()) * 1e-12, 1e-300)
        ax.semilogy(grid, np.maximum(density, floor), color="tab:blue", linewidth=1.0, label="density (SLQ)")
        ax.set_ylim(bottom=max(floor, float(density.max()) * 1e-8))
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density")
        _eigenvalue_marks(ax, view)
    else:
        values = np.asarray(a["eigenvalues"], dtype=float)
        errors = np.asarray(a.get("eigenvalue_errors", np.zeros_like(values)), dtype=float)
        idx = np.arange(1, len(values) + 1)
        ax.errorbar(idx, values, yerr=errors, marker="o", linestyle="none", color="tab:blue", label="λ_i (top)")
        if "lambda_min" in view.scalars:
            ax.axhline(view.scalars["lambda_min"], color="tab:purple", linestyle=":", label="λmin")
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_xticks(idx)
        ax.set_xlabel("index i")
        ax.set_ylabel("Hessian eigenvalue")
    extra = []
    if "trace" in view.scalars:
        extra.append(f"trace {view.scalars['trace']:.4g} ± {view.scalars.get('trace_stderr', float('nan')):.2g}")
    if "min_max_ratio" in view.scalars:
        extra.append(f"|λmin/λmax| {view.scalars['min_max_ratio']:.3g}")
    ax.legend(fontsize=7, title="; ".join(extra) or None, title_fontsize=7)
    ax.set_title(view.title, fontsize=10)
    return fig


def _axis_labels(view: ResultView) -> tuple[str, str]:
    return plane_axis_labels(view)  # the plane is surface's: the same labels


def _render_map(view: ResultView, name: str, label: str, cmap: str, vmin: float | None = None) -> Figure:
    a = view.arrays
    xs, ys = np.asarray(a["x"], dtype=float), np.asarray(a["y"], dtype=float)
    rows = np.asarray(a.get("row_index", np.arange(len(ys))))
    cols = np.asarray(a.get("col_index", np.arange(len(xs))))
    x, y = xs[cols], ys[rows]
    z = np.asarray(a[name], dtype=float)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    dx = (x[1] - x[0]) / 2 if len(x) > 1 else 0.5
    dy = (y[1] - y[0]) / 2 if len(y) > 1 else 0.5
    finite = z[np.isfinite(z)]
    top = float(finite.max()) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(z), origin="lower", cmap=cmap, aspect="auto", interpolation="nearest",
                      extent=(x[0] - dx, x[-1] + dx, y[0] - dy, y[-1] + dy),
                      vmin=vmin, vmax=top if vmin is not None and top > vmin else None)
    fig.colorbar(image, ax=ax, label=label)
    loss = np.asarray(a.get("loss", np.full_like(z, np.nan)), dtype=float)
    if np.isfinite(loss).sum() > 3 and len(x) > 1 and len(y) > 1:
        cs = ax.contour(x, y, np.ma.masked_invalid(loss), levels=contour_levels(loss, 10), colors="white",
                        linewidths=0.6, alpha=0.8)
        ax.clabel(cs, inline=True, fontsize=5, fmt="%.3g")
    if 0.0 >= x[0] and 0.0 <= x[-1] and 0.0 >= y[0] and 0.0 <= y[-1]:
        ax.plot([0.0], [0.0], marker="*", color="white", markersize=9, markeredgecolor="black", linestyle="none")
    xlabel, ylabel = _axis_labels(view)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(view.title, fontsize=10)
    return fig


def render_eigenmap(view: ResultView) -> Figure:
    """|λmin/λmax| with loss contours (Li et al. 2018, Fig. 7): blue convex-looking, yellow strongly non-convex."""
    return _render_map(view, "ratio", "|λmin / λmax|", CMAP, vmin=0.0)


def render_eigenmap_lambda_max(view: ResultView) -> Figure:
    """λmax over the plane, with loss contours."""
    return _render_map(view, "lambda_max", "λmax", "magma")


def render_eigenmap_lambda_min(view: ResultView) -> Figure:
    """λmin over the plane, with loss contours."""
    return _render_map(view, "lambda_min", "λmin", "magma_r")


def render_hessian_trajectory(view: ResultView) -> Figure:
    """The top-k eigenvalues (error bars: their bounds) and the loss against the step (Cohen et al. 2021, Fig. 2)."""
    a = view.arrays
    steps = np.asarray(a["steps"], dtype=float)
    values = np.asarray(a["eigenvalues"], dtype=float).reshape(len(steps), -1)
    errors = np.asarray(a["eigenvalue_errors"], dtype=float).reshape(values.shape)
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for j in range(values.shape[1]):
        ax.errorbar(steps, values[:, j], yerr=errors[:, j], marker="o", markersize=3, linewidth=1.0,
                    label="λmax" if j == 0 else f"λ{j + 1}")
    ax.set_xlabel("step")
    ax.set_ylabel("Hessian eigenvalue")
    loss_ax = ax.twinx()
    loss_ax.plot(steps, np.asarray(a["loss"], dtype=float), color="0.5", linestyle=":", linewidth=1.0, label="loss")
    loss_ax.set_ylabel("loss", color="0.5")
    ax.legend(fontsize=7, title=f"{int(view.scalars.get('total_hvps', 0))} Hessian-vector products",
              title_fontsize=7)
    ax.set_title(view.title, fontsize=10)
    return fig


#: (analysis, renderer name, renderer): what `plugin.register_renderers` registers.
RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("hessian", "default", render_hessian),
    ("hessian", "density", render_hessian),
    ("hessian-trajectory", "default", render_hessian_trajectory),
    ("eigenmap", "default", render_eigenmap),
    ("eigenmap", "ratio", render_eigenmap),
    ("eigenmap", "lambda_max", render_eigenmap_lambda_max),
    ("eigenmap", "lambda_min", render_eigenmap_lambda_min),
)
