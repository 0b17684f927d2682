"""Contour, filled-contour and 3D figures of a surface, with a path overlay (Li et al. 2018, Figs. 5, 9)."""

from __future__ import annotations

import numpy as np
import pytest

from lsdb.plotting import contour_figure, contour_levels, surface3d_figure


def _bowl() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = np.linspace(-1, 1, 9), np.linspace(-2, 2, 7)
    gx, gy = np.meshgrid(x, y)
    return x, y, 0.1 + gx**2 + gy**2


def test_contour_lines_are_labelled_and_filled_contours_get_a_colour_bar() -> None:
    x, y, z = _bowl()
    fig = contour_figure(x, y, z, xlabel="a", ylabel="b", title="t")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    assert len(ax.texts) > 0  # clabel
    filled = contour_figure(x, y, z, filled=True, levels=[0.1, 1.0, 2.0, 4.0])
    assert len(filled.axes) == 2


def test_path_and_marks_are_drawn_on_top() -> None:
    x, y, z = _bowl()
    fig = contour_figure(
        x, y, z, path=([0.5, 0.2, 0.0], [1.0, 0.5, 0.0]), path_labels=["0", "5", "10"], marks=[(0.0, 0.0, "centre")]
    )
    ax = fig.axes[0]
    path = ax.get_lines()[0]
    np.testing.assert_allclose(path.get_xdata(), [0.5, 0.2, 0.0])
    texts = {t.get_text() for t in ax.texts}
    assert {"0", "5", "10", "centre"} <= texts


def test_shape_mismatch_is_an_error() -> None:
    x, y, z = _bowl()
    with pytest.raises(ValueError, match="len\\(y\\), len\\(x\\)"):
        contour_figure(x, y, z.T)
    with pytest.raises(ValueError):
        surface3d_figure(x, y, z.T)


def test_levels_are_geometric_for_a_wide_positive_range_and_survive_a_flat_surface() -> None:
    assert np.allclose(contour_levels(np.array([0.01, 100.0]), 5), [0.01, 0.1, 1.0, 10.0, 100.0])
    assert np.allclose(contour_levels(np.array([1.0, 3.0]), 3), [1.0, 2.0, 3.0])
    assert np.allclose(contour_levels(np.array([-1.0, np.nan, 1.0]), 3), [-1.0, 0.0, 1.0])
    x, y = np.arange(3.0), np.arange(4.0)
    flat = contour_figure(x, y, np.ones((4, 3)))
    assert len(flat.axes) == 1


def test_surface3d_clips_at_zmax() -> None:
    x, y, z = _bowl()
    fig = surface3d_figure(x, y, z, zmax=1.0, zlabel="loss")
    ax = fig.axes[0]
    assert ax.name == "3d" and ax.get_zlabel() == "loss"
    assert ax.get_zlim()[1] <= 1.0 + 0.2
