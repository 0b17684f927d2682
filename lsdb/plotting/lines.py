"""Loss and accuracy along one coordinate: the 1D plots of Goodfellow et al. 2015 and Li et al. 2018.

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", Fig. 2) draw the loss on the
left axis and the accuracy on a twin right axis, train solid and test dashed; `curves_figure`
draws exactly that, for linear interpolations (Goodfellow, Vinyals & Saxe 2015, Fig. 1) and
for 1D slices of a loss surface alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

LOSS_COLOR = "tab:blue"
ACCURACY_COLOR = "tab:red"
LINESTYLES = {"train": "-", "test": "--"}


def line_style(split: str) -> str:
    """Train solid, test dashed, anything else dotted (Li et al. 2018, Fig. 2)."""
    return LINESTYLES.get(split, ":")


def curves_figure(
    x: ArrayLike,
    losses: Mapping[str, ArrayLike],
    accuracies: Mapping[str, ArrayLike] | None = None,
    *,
    xlabel: str = "α",
    title: str | None = None,
    log_loss: bool = False,
    marks: Sequence[tuple[float, str]] = (),
) -> Figure:
    """Loss (left axis) and accuracy in % (right, twin axis) against `x`, one line style per split.

    `losses` and `accuracies` map a split name to values; an accuracy that is all NaN (a
    regression task) is skipped, and without any the figure has one axis. `marks` draws a
    labelled vertical line at each ``(x, label)``, e.g. the two checkpoints at α = 0 and 1.
    """
    xs = np.asarray(x, dtype=float)
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    handles: list[Line2D] = []
    for split, loss in losses.items():
        (line,) = ax.plot(
            xs, np.asarray(loss, dtype=float), color=LOSS_COLOR, linestyle=line_style(split), label=f"{split} loss"
        )
        handles.append(line)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss", color=LOSS_COLOR)
    ax.tick_params(axis="y", labelcolor=LOSS_COLOR)
    if log_loss:
        ax.set_yscale("log")
    shown = {k: np.asarray(v, dtype=float) for k, v in (accuracies or {}).items()}
    shown = {k: v for k, v in shown.items() if np.isfinite(v).any()}
    if shown:
        acc_ax = ax.twinx()
        for split, acc in shown.items():
            (line,) = acc_ax.plot(
                xs, 100.0 * acc, color=ACCURACY_COLOR, linestyle=line_style(split), label=f"{split} accuracy"
            )
            handles.append(line)
        acc_ax.set_ylabel("accuracy (%)", color=ACCURACY_COLOR)
        acc_ax.tick_params(axis="y", labelcolor=ACCURACY_COLOR)
        acc_ax.set_ylim(0.0, 100.0)
    for value, label in marks:
        ax.axvline(value, color="0.6", linewidth=0.8, zorder=0)
        ax.annotate(
            label,
            (value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color="0.35",
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
