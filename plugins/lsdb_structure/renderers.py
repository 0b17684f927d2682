"""Figures of this plugin's results (registered in `plugin`), after the figures of the papers.

`tunnel`: loss and error along the tunnel and along the straight line (Fort & Jastrzebski 2019,
Fig. 3 left) and the deviations' cosine-similarity matrix (Fig. 3 right); `mconnector`: the
loss over the simplex, as triangle heat maps for m = 3 (Fig. 4); `tunnel-width`: the loss
profiles along the random directions and the distribution of widths (Fig. 5); `wedge-sim`: each
toy experiment's figure; `minima-map`: the embedding coloured by test accuracy (Huang et al.
2019, Fig. 1). Every renderer builds a `matplotlib.figure.Figure` with the object API.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.tri import Triangulation

from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]
PATH_COLOR, LINE_COLOR = "tab:blue", "0.45"
STYLES = {"train": "-", "test": "--"}


def _splits(arrays: dict[str, np.ndarray], prefix: str) -> list[str]:
    return [s for s in ("train", "test") if f"{prefix}_{s}_loss" in arrays]


def _cosine_axes(fig: Figure, ax: Axes, cos: np.ndarray, t: np.ndarray | None, title: str) -> None:
    image = ax.imshow(cos, vmin=-1.0, vmax=1.0, cmap="RdBu_r", interpolation="nearest")
    if t is not None and len(t) == len(cos):
        ticks = np.arange(len(t))
        ax.set_xticks(ticks, [f"{v:.2f}" for v in t], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [f"{v:.2f}" for v in t], fontsize=7)
    ax.set_xlabel("knot t")
    ax.set_ylabel("knot t")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="cosine similarity")


def render_tunnel(view: ResultView) -> Figure:
    """Loss (left) and error (right) along the tunnel and the straight line; train solid, test dashed."""
    a = view.arrays
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    loss_ax, err_ax = fig.subplots(1, 2)
    for split in _splits(a, "path"):
        for name, color, label in (("path", PATH_COLOR, "tunnel"), ("line", LINE_COLOR, "straight line")):
            style = STYLES[split]
            loss_ax.plot(a["t"], a[f"{name}_{split}_loss"], color=color, linestyle=style, label=f"{label}, {split}")
            err = a.get(f"{name}_{split}_err")
            if err is not None and np.isfinite(err).any():
                err_ax.plot(a["t"], 100 * err, color=color, linestyle=style, label=f"{label}, {split}")
    for ax, label in ((loss_ax, "loss"), (err_ax, "error (%)")):
        for t in a.get("knot_t", ())[1:-1]:
            ax.axvline(t, color="0.85", linewidth=0.6, zorder=0)
        ax.set_xlabel("t (0: start, 1: end)")
        ax.set_ylabel(label)
    loss_ax.legend(fontsize=7, frameon=False)
    fig.suptitle(view.title, fontsize=10)
    return fig


def render_tunnel_cosines(view: ResultView) -> Figure:
    """The cosine similarities of the knots' deviations from the line (Fort & Jastrzebski 2019, Fig. 3)."""
    a = view.arrays
    fig = Figure(figsize=(5.0, 4.4), layout="constrained")
    knot_t = a.get("knot_t")
    contrast = view.scalars.get("deviation_contrast")
    title = "deviations from the straight line" + (f" (contrast {contrast:.2f})" if contrast is not None else "")
    _cosine_axes(fig, fig.add_subplot(), a["deviation_cosine"], None if knot_t is None else knot_t[1:-1], title)
    return fig


def _simplex_xy(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    xy = weights @ corners
    return xy[:, 0], xy[:, 1]


def render_mconnector(view: ResultView) -> Figure:
    """m = 3: train loss over the triangle, flat hull vs optimized (Fig. 4); otherwise loss against max_i w_i."""
    a = view.arrays
    w = a["weights"]
    split = "train" if "hull_train_loss" in a else "test"
    hull, conn = a[f"hull_{split}_loss"], a[f"connector_{split}_loss"]
    names = list(view.attrs.get("optima", [])) or [f"θ{i + 1}" for i in range(w.shape[1])]
    if w.shape[1] != 3:
        fig = Figure(figsize=(5.5, 4.0), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(w.max(axis=1), hull, color=LINE_COLOR, label="convex hull", s=14)
        ax.scatter(w.max(axis=1), conn, color=PATH_COLOR, label="optimized (m-connector)", s=14)
        ax.set_xlabel("max_i w_i (1: an optimum, 1/m: the centre)")
        ax.set_ylabel(f"{split} loss")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title(f"{view.title}: m = {w.shape[1]}", fontsize=10)
        return fig
    x, y = _simplex_xy(w)
    tri = Triangulation(x, y)
    vmin, vmax = float(np.nanmin([hull.min(), conn.min()])), float(np.nanmax([hull.max(), conn.max()]))
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, title in ((axes[0], hull, "convex hull"), (axes[1], conn, "optimized normal to the hull")):
        image = ax.tripcolor(tri, values, shading="gouraud", vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(f"{title}: max {np.nanmax(values):.3g}", fontsize=9)
        for (cx, cy), name in zip(((0, 0), (1, 0), (0.5, math.sqrt(3) / 2)), names, strict=False):
            ax.annotate(name, (cx, cy), fontsize=7, ha="center", va="top" if cy == 0 else "bottom")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"{split} loss")
    fig.suptitle(view.title, fontsize=10)
    return fig


def _profiles_and_widths(fig: Figure, radii: np.ndarray, profiles: np.ndarray, widths: np.ndarray,
                         threshold: float | None, xlabel: str, center_loss: float | None = None) -> None:
    prof_ax, hist_ax = fig.subplots(1, 2)
    if center_loss is not None:  # every profile starts at the centre
        radii = np.concatenate([[0.0], radii])
        profiles = np.concatenate([np.full((len(profiles), 1), center_loss), profiles], axis=1)
    for row in profiles:
        prof_ax.plot(radii, row, color=PATH_COLOR, alpha=0.35, linewidth=0.8)
    if threshold is not None:
        prof_ax.axhline(threshold, color="tab:red", linewidth=0.8, label=f"threshold {threshold:.3g}")
        prof_ax.legend(fontsize=7, frameon=False)
        if threshold > 0 and np.nanmax(profiles) > 4 * threshold:  # keep the crossings readable
            prof_ax.set_ylim(0.0, 4 * threshold)
    prof_ax.set_xlabel(xlabel)
    prof_ax.set_ylabel("loss")
    prof_ax.set_title("loss along each random direction", fontsize=9)
    hist_ax.hist(widths, bins=min(20, max(5, len(widths) // 2)), color=PATH_COLOR)
    hist_ax.set_xlabel(f"width ({xlabel})")
    hist_ax.set_ylabel("directions")
    hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    mean, std = float(np.mean(widths)), float(np.std(widths))
    hist_ax.set_title(f"width {mean:.3g} ± {std:.2g}", fontsize=9)


def render_tunnel_width(view: ResultView) -> Figure:
    """Loss profiles along the random directions with the threshold, and the histogram of widths (Fig. 5)."""
    a = view.arrays
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    norm = view.params.get("norm", "none")
    xlabel = "distance" if norm == "none" else "distance (filter-normalized units)"
    _profiles_and_widths(fig, a["radii"], a["profiles"], a["widths"], view.scalars.get("threshold"), xlabel,
                         view.scalars.get("center_loss"))
    fig.suptitle(view.title, fontsize=10)
    return fig


def render_wedge_sim(view: ResultView) -> Figure:
    """Experiment 1: final loss against d; 2: the tunnel and its deviation cosines; 3: radial profiles."""
    a = view.arrays
    experiment = int(view.params.get("experiment", view.attrs.get("experiment", 1)))
    n = int(view.params.get("n", 0))
    if experiment == 1:
        fig = Figure(figsize=(5.5, 4.0), layout="constrained")
        ax = fig.add_subplot()
        dims, final = a["dims"], a["final_loss"]
        floor = 1e-16
        for j in range(final.shape[1]):
            ax.scatter(dims, np.maximum(final[:, j], floor), color=LINE_COLOR, s=10)
        ax.plot(dims, np.maximum(final.mean(axis=1), floor), color=PATH_COLOR, marker="o", label="mean")
        ax.axvline(n, color="tab:red", linewidth=0.8, label=f"d = n = {n}")
        ax.set_yscale("log")
        ax.set_xlabel("dimension d of the random affine subspace")
        ax.set_ylabel("final loss (distance to the nearest wedge)")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title(f"wedge model, D = {view.params.get('dim')}, n = {n}", fontsize=10)
        return fig
    if experiment == 2:
        fig = Figure(figsize=(9.0, 3.8), layout="constrained")
        ax, cos_ax = fig.subplots(1, 2)
        ax.plot(a["t"], a["line_loss"], color=LINE_COLOR, label="straight line")
        ax.plot(a["t"], a["path_loss"], color=PATH_COLOR, label="tunnel")
        ax.set_xlabel("t")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8, frameon=False)
        ax.set_title("tunnel between two wedges", fontsize=9)
        _cosine_axes(fig, cos_ax, a["deviation_cosine"], a["knot_t"][1:-1], "deviation cosines")
        return fig
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    threshold = float(view.params.get("threshold", 0.25))
    _profiles_and_widths(fig, a["radii"], a["profiles"], a["widths"], threshold, "distance",
                         view.scalars.get("center_loss"))
    fig.suptitle(f"radial probing from a wedge (D = {view.params.get('dim')}, n = {n})", fontsize=10)
    return fig


def _render_map(view: ResultView, key: str) -> Figure:
    a = view.arrays
    xy, group = a[key], a["group"]
    color = a.get("test_acc", a.get("train_acc"))
    shown = 100 * color if color is not None and np.isfinite(color).any() else np.zeros(len(xy))
    labels = [str(x) for x in view.attrs.get("labels", [])]
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for g in sorted(set(group.tolist()) - {0}):
        rows = np.flatnonzero(group == g)
        name = labels[rows[0]].split("@")[0] if len(labels) == len(xy) else f"trajectory {g}"
        ax.plot(xy[rows, 0], xy[rows, 1], linewidth=0.9, zorder=1, label=f"trajectory of {name}")
    minima = shown[group == 0]
    low = float(np.nanmin(minima)) if np.ptp(minima) > 0 else float(np.nanmin(shown))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=shown, cmap="viridis", vmin=low, vmax=float(np.nanmax(shown)),
                        s=np.where(group == 0, 46, 14), edgecolors=np.where(group == 0, "k", "none"), zorder=2)
    fig.colorbar(points, ax=ax, label="test accuracy (%)", extend="min" if low > np.nanmin(shown) else "neither")
    method = view.attrs.get("method", "pca") if key == "coords" else "pca"
    ratios = a.get("explained_variance_ratio")
    if method == "pca" and ratios is not None:
        ax.set_xlabel(f"PC 1 ({100 * ratios[0]:.1f} %)")
        ax.set_ylabel(f"PC 2 ({100 * ratios[1]:.1f} %)")
    else:
        ax.set_xlabel(f"{method} 1")
        ax.set_ylabel(f"{method} 2")
    if (group != 0).any():
        ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"minima-map #{view.id}: {int((group == 0).sum())} minima (outlined), {method}", fontsize=10)
    return fig


def render_minima_map(view: ResultView) -> Figure:
    """The embedding (t-SNE or PCA) coloured by test accuracy (Huang et al. 2019, Fig. 1)."""
    return _render_map(view, "coords")


def render_minima_map_pca(view: ResultView) -> Figure:
    """The PCA embedding, whatever `method` was used for the default one."""
    return _render_map(view, "pca_coords")


#: (analysis, renderer name, renderer): what `plugin.register_renderers` registers.
RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("tunnel", "default", render_tunnel),
    ("tunnel", "cosines", render_tunnel_cosines),
    ("mconnector", "default", render_mconnector),
    ("tunnel-width", "default", render_tunnel_width),
    ("wedge-sim", "default", render_wedge_sim),
    ("minima-map", "default", render_minima_map),
    ("minima-map", "pca", render_minima_map_pca),
)
