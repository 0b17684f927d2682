"""`curves_figure`: loss and accuracy on twin axes, train solid and test dashed (Li et al. 2018, Fig. 2)."""

from __future__ import annotations

import numpy as np

from lsdb.plotting import curves_figure


def _named(ax):  # type: ignore[no-untyped-def]
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_loss_and_accuracy_get_twin_axes_with_one_style_per_split() -> None:
    x = np.linspace(-0.5, 1.5, 9)
    fig = curves_figure(
        x,
        {"train": x**2, "test": x**2 + 1},
        {"train": 1 - x / 2, "test": 0.9 - x / 2},
        marks=[(0.0, "a"), (1.0, "b")],
        title="t",
    )
    assert len(fig.axes) == 2
    loss_lines, acc_lines = _named(fig.axes[0]), _named(fig.axes[1])
    assert [ln.get_linestyle() for ln in loss_lines] == ["-", "--"]
    assert [ln.get_linestyle() for ln in acc_lines] == ["-", "--"]
    np.testing.assert_allclose(acc_lines[0].get_ydata(), 100 * (1 - x / 2))  # percent
    assert fig.axes[1].get_ylim() == (0.0, 100.0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["a", "b"]
    assert fig.axes[0].get_title() == "t"


def test_nan_or_missing_accuracy_gives_a_single_axis() -> None:
    x = np.arange(5.0)
    assert len(curves_figure(x, {"train": x}, {"train": np.full(5, np.nan)}).axes) == 1
    fig = curves_figure(x, {"train": x + 1}, log_loss=True)
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "log"
