"""Figures of this plugin's results, after Garipov et al. 2018 (registered in `plugin`).

* `curve`: train (solid) and test (dashed) loss and error against t, along the fitted curve and
  along the straight line (Garipov et al. 2018, Fig. 2);
* `plane`: filled contours of the train loss (or, kind ``test_error``, the test error) on the
  plane through start, bend and end, with the curve drawn on it (Fig. 1);
* `fge`: the learning-rate schedule with the snapshots marked, and the error of the growing
  ensemble against its size next to each member's (Fig. 3 and Table 1 in miniature);
* `swa`: the learning rate with the averaging points, and the average's error against the SGD
  iterate's or each member's (Izmailov et al. 2018, Fig. 1);
* `ensemble`: error against ensemble size and the ensemble's reliability diagram (Guo et al.
  2017, Fig. 1); kind ``disagreement``: the members' pairwise disagreement.

Every renderer uses matplotlib's object API (`Figure`), never pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lsdb.plotting import contour_figure
from lsdb.plugin import ResultView

Renderer = Callable[[ResultView], Figure]
COLORS = {"curve": "tab:blue", "line": "tab:red"}
STYLES = {"train": "-", "test": "--"}


def _title(view: ResultView, note: str = "") -> str:
    return f"{view.title} ({note})" if note else view.title


def render_curve(view: ResultView) -> Figure:
    """Loss (top) and error in % (bottom) against t, curve against straight line (Garipov et al. 2018, Fig. 2)."""
    a = view.arrays
    t = a["t"]
    has_error = any(k.endswith("_error") for k in a)
    fig = Figure(figsize=(6.0, 5.5 if has_error else 3.5), layout="constrained")
    axes = fig.subplots(2 if has_error else 1, 1, sharex=True, squeeze=False)[:, 0]
    kind = str(view.params.get("curve", "bezier"))
    for path in ("curve", "line"):
        label = f"{kind} curve" if path == "curve" else "straight line"
        for split in ("train", "test"):
            if f"{path}_{split}_loss" in a:
                axes[0].plot(t, a[f"{path}_{split}_loss"], STYLES[split], color=COLORS[path], label=f"{label}, {split}")
            if has_error and f"{path}_{split}_error" in a:
                axes[1].plot(t, 100 * a[f"{path}_{split}_error"], STYLES[split], color=COLORS[path])
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=7)
    axes[0].set_title(_title(view, f"{kind} vs straight line"), fontsize=9)
    if has_error:
        axes[1].set_ylabel("error (%)")
    if kind == "polychain":
        bends = int(view.params.get("bends", 1))
        for ax in axes:
            for i in range(1, bends + 1):
                ax.axvline(i / (bends + 1), color="0.7", linewidth=0.8, linestyle=":")
    axes[-1].set_xlabel("t")
    return fig


def _render_plane(view: ResultView, key: str) -> Figure:
    a = view.arrays
    if key not in a:
        raise ValueError(f"result {view.id} has no '{key}' array (splits: {view.params.get('splits')})")
    labels = ("start", "bend" if view.params.get("curve", "bezier") != "none" else "third", "end")
    marks = [(float(x), float(y), n) for x, y, n in zip(a["points_x"], a["points_y"], labels, strict=True)]
    path = (a["curve_x"], a["curve_y"]) if "curve_x" in a else None
    z = 100 * a[key] if key.endswith("_error") else a[key]
    return contour_figure(a["x"], a["y"], z, filled=True, xlabel="x (towards end)", ylabel=f"y (towards {labels[1]})",
                          zlabel=key.replace("_", " ") + (" (%)" if key.endswith("_error") else ""),
                          title=_title(view), path=path, marks=marks)


def render_plane(view: ResultView) -> Figure:
    """Train loss on the plane with the curve and its three points (Garipov et al. 2018, Fig. 1)."""
    return _render_plane(view, "train_loss" if "train_loss" in view.arrays else "test_loss")


def render_plane_test_error(view: ResultView) -> Figure:
    """Test error (%) on the plane with the curve."""
    return _render_plane(view, "test_error")


def _lr_panel(ax: Axes, lr: np.ndarray, epochs_marked: np.ndarray, steps_per_epoch: float, label: str) -> None:
    steps = np.arange(1, len(lr) + 1) / steps_per_epoch
    ax.plot(steps, lr, color="tab:blue", linewidth=1.0)
    for e in epochs_marked:
        ax.axvline(float(e), color="tab:red", linewidth=0.8, linestyle=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(label, fontsize=9)


def _size_panel(ax: Axes, a: dict[str, np.ndarray], start_error: float | None = None) -> None:
    sizes = np.arange(1, len(a["ensemble_error"]) + 1)
    ax.plot(sizes, 100 * a["ensemble_error"], "o-", color="tab:blue", label="ensemble of first k")
    ax.plot(sizes, 100 * a["member_error"], "s", color="tab:gray", markersize=4, label="member k")
    if start_error is not None:
        ax.axhline(100 * start_error, color="tab:red", linestyle="--", linewidth=0.8, label="start")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("members")
    ax.set_ylabel("error (%)")
    ax.legend(fontsize=7)


def render_fge(view: ResultView) -> Figure:
    """The cyclical learning rate with its snapshots, and the growing ensemble's error (Garipov et al. 2018, §5)."""
    a = view.arrays
    split = view.params.get("split", "test")
    fig = Figure(figsize=(9.0, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    per_epoch = len(a["lr"]) / max(1.0, float(view.scalars.get("epochs", 1.0)))
    _lr_panel(left, a["lr"], a.get("snapshot_epoch", np.zeros(0)), per_epoch, f"{view.params.get('schedule')} "
              "schedule (snapshots dotted)")
    _size_panel(right, a, view.scalars.get(f"start_{split}_error"))
    right.set_title(_title(view, f"{split} error"), fontsize=9)
    return fig


def render_swa(view: ResultView) -> Figure:
    """The SWA schedule with its averaging points (if trained), and the average's error against the references."""
    a = view.arrays
    split = view.params.get("split", "test")
    trained = "lr" in a
    fig = Figure(figsize=(9.0 if trained else 5.0, 3.5), layout="constrained")
    axes = fig.subplots(1, 2 if trained else 1, squeeze=False)[0]
    if trained:
        per_epoch = len(a["lr"]) / max(1, int(view.params.get("epochs", 1)))
        _lr_panel(axes[0], a["lr"], a.get("averaged_epoch", np.zeros(0)), per_epoch, "schedule (averaging dotted)")
    ax = axes[-1]
    metric = "error" if f"reference_{split}_error" in a else "loss"
    refs = a[f"reference_{split}_{metric}"]
    names = ["SGD"] if trained else [f"m{i + 1}" for i in range(len(refs))]
    scale = 100.0 if metric == "error" else 1.0
    swa_value = view.scalars.get(f"swa_{split}_{metric}", np.nan)
    ax.bar(range(len(refs) + 1), [scale * swa_value, *(scale * refs)], color=["tab:blue"] + ["tab:gray"] * len(refs))
    ax.set_xticks(range(len(refs) + 1), ["SWA", *names])
    ax.set_ylabel(f"{split} {metric}" + (" (%)" if metric == "error" else ""))
    ax.set_title(_title(view), fontsize=9)
    return fig


def render_ensemble(view: ResultView) -> Figure:
    """Error against ensemble size, and the ensemble's reliability diagram (Guo et al. 2017, Fig. 1)."""
    a = view.arrays
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    _size_panel(left, a)
    left.set_title(_title(view, f"{view.params.get('split', 'test')} error"), fontsize=9)
    conf, acc, count = a["reliability_confidence"], a["reliability_accuracy"], a["reliability_count"]
    bins = len(count)
    edges = np.linspace(0.0, 1.0, bins + 1)
    shown = count > 0
    right.bar(edges[:-1][shown], acc[shown], width=1.0 / bins, align="edge", color="tab:blue", edgecolor="black",
              linewidth=0.5, label="accuracy")
    right.bar(edges[:-1][shown], (conf - acc)[shown], bottom=acc[shown], width=1.0 / bins, align="edge",
              color="tab:red", alpha=0.3, label="gap to confidence")
    right.plot([0, 1], [0, 1], "--", color="0.4", linewidth=0.8)
    right.set_xlabel("confidence")
    right.set_ylabel("accuracy")
    right.set_title(f"ensemble reliability, ECE {100 * view.scalars.get('ensemble_ece', np.nan):.2f} %", fontsize=9)
    right.legend(fontsize=7)
    return fig


def render_disagreement(view: ResultView) -> Figure:
    """The fraction of examples on which each pair of members predicts different classes."""
    d = view.arrays["disagreement"]
    fig = Figure(figsize=(4.8, 4.0), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(100 * d, cmap="viridis", vmin=0)
    fig.colorbar(image, ax=ax, label="disagreement (%)")
    ticks = np.arange(len(d))
    ax.set_xticks(ticks, [str(i + 1) for i in ticks])
    ax.set_yticks(ticks, [str(i + 1) for i in ticks])
    ax.set_xlabel("member")
    ax.set_ylabel("member")
    ax.set_title(_title(view, "pairwise disagreement"), fontsize=9)
    return fig


#: (analysis, renderer name, renderer): what `plugin.register_renderers` registers.
RENDERERS: tuple[tuple[str, str, Renderer], ...] = (
    ("curve", "default", render_curve),
    ("plane", "default", render_plane),
    ("plane", "test_error", render_plane_test_error),
    ("fge", "default", render_fge),
    ("fge", "disagreement", render_disagreement),
    ("swa", "default", render_swa),
    ("ensemble", "default", render_ensemble),
    ("ensemble", "disagreement", render_disagreement),
)
