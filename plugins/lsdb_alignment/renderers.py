"""Figures of this plugin's results (registered in `plugin`).

* `align`: train loss along the naive line, the aligned line and (networks without BatchNorm)
  the REPAIRed aligned line (Ainsworth et al. 2023, Fig. 2; Jordan et al. 2023, Fig. 1); kind
  ``objective``: the weight-matching objective per sweep (Ainsworth et al. Alg. 1 never lowers it);
* `merge`: the merged network's loss and accuracy against each input's;
* `merge-plane`: filled contours of the loss over the plane of two task vectors with the base,
  the fine-tunes and every merge marked (kind ``accuracy``: accuracy; ``first``/``second``: the
  loss on each task's classes when they were given).

Every renderer uses matplotlib's object API (`Figure`), never pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from lsdb.plotting import contour_figure
from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]
LINES = {"naive": ("tab:red", "naive line"), "aligned": ("tab:blue", "after alignment"),
         "repaired": ("tab:green", "aligned + REPAIR")}


def render_align(view: ResultView) -> Figure:
    """Loss along the naive and the aligned lines between the two networks."""
    a = view.arrays
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    if "alpha" not in a:
        ax.text(0.5, 0.5, "no barrier measured (steps=0)", ha="center", va="center", transform=ax.transAxes)
        return fig
    for name, (color, label) in LINES.items():
        if f"{name}_loss" in a:
            barrier = view.scalars.get(f"{name}_barrier")
            extra = f" (barrier {barrier:.3g})" if barrier is not None else ""
            ax.plot(a["alpha"], a[f"{name}_loss"], "-o", ms=3, color=color, label=label + extra)
    ax.set_xlabel("α  (0: reference, 1: other)")
    ax.set_ylabel(f"{view.params.get('split', 'train')} loss")
    ax.legend(fontsize=8)
    ax.set_title(f"{view.title} ({view.params.get('method', 'weights')} matching)", fontsize=9)
    return fig


def render_align_objective(view: ResultView) -> Figure:
    """The weight-matching objective Σ⟨W_A, π(W_B)⟩ after each sweep."""
    fig = Figure(figsize=(5.0, 3.5), layout="constrained")
    ax = fig.add_subplot()
    objective = view.arrays["objective"]
    ax.plot(np.arange(len(objective)), objective, "-o")
    ax.set_xlabel("sweep")
    ax.set_ylabel("objective")
    ax.set_title(view.title, fontsize=9)
    return fig


def render_merge(view: ResultView) -> Figure:
    """Loss and accuracy of the merge (star) against each merged network's (bars)."""
    split = str(view.params.get("split", "test"))
    a, s = view.arrays, view.scalars
    fig = Figure(figsize=(6.0, 3.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        members = a[f"member_{split}_{metric}"]
        ax.bar(np.arange(len(members)), members, color="tab:gray", label="inputs")
        merged = s.get(f"merged_{split}_{metric}")
        if merged is not None:
            ax.axhline(merged, color="tab:blue", label="merge")
        base = s.get(f"base_{split}_{metric}")
        if base is not None:
            ax.axhline(base, color="tab:red", ls="--", label="base")
        ax.set_xticks(np.arange(len(members)))
        ax.set_xlabel("input")
        ax.set_ylabel(f"{split} {metric}")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{view.title} ({view.params.get('method', 'average')})", fontsize=9)
    return fig


def _plane(view: ResultView, metric: str, subset: str = "") -> Figure:
    a = view.arrays
    splits = view.params.get("splits") or ["test"]
    split = str(splits[0])
    z = a[f"{split}{subset}_{metric}"]
    labels = str(view.attrs.get("merged_labels", "")).split("|")
    marks = [(0.0, 0.0, "base"), (1.0, 0.0, "first"), (0.0, 1.0, "second")]
    for x, y, label in zip(a["merged_x"], a["merged_y"], labels, strict=False):
        if all(abs(x - mx) + abs(y - my) > 1e-6 for mx, my, _ in marks):  # a stored merge equal to a drawn one
            marks.append((float(x), float(y), label))
    zlabel = f"{split}{subset.replace('_', ' ')} {'accuracy' if metric == 'acc' else 'loss'}"
    return contour_figure(a["x"], a["y"], 1.0 - z if metric == "acc" else z, filled=True,
                          xlabel="x (task vector 1)", ylabel="y (task vector 2)",
                          zlabel=zlabel.replace("accuracy", "error") if metric == "acc" else zlabel,
                          title=view.title, marks=marks)


def render_merge_plane(view: ResultView) -> Figure:
    """Filled loss contours over the task-vector plane with the merges marked."""
    return _plane(view, "loss")


def render_merge_plane_error(view: ResultView) -> Figure:
    """Filled error (1 − accuracy) contours over the task-vector plane."""
    return _plane(view, "acc")


def render_merge_plane_first(view: ResultView) -> Figure:
    """The loss on the first task's classes only."""
    return _plane(view, "loss", "_first")


def render_merge_plane_second(view: ResultView) -> Figure:
    """The loss on the second task's classes only."""
    return _plane(view, "loss", "_second")


RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("align", "default", render_align),
    ("align", "objective", render_align_objective),
    ("merge", "default", render_merge),
    ("merge-plane", "default", render_merge_plane),
    ("merge-plane", "error", render_merge_plane_error),
    ("merge-plane", "first", render_merge_plane_first),
    ("merge-plane", "second", render_merge_plane_second),
)
