"""Matplotlib figures from result arrays: 1D curves, contours, 3D surfaces, trajectories.

Everything here builds a `matplotlib.figure.Figure` with the object-oriented API and never
touches pyplot's global state, so it is safe in workers, threads and tests (any backend;
saving uses Agg for PNG). Functions take NumPy arrays and labels, never a catalog or a
result: renderers registered by plugins turn a `ResultView` into these calls.
"""

from lsdb.plotting.contours import add_path, contour_figure, contour_levels, surface3d_figure
from lsdb.plotting.figures import FIGURE_FORMATS, save_figure
from lsdb.plotting.labels import input_names, pc_label, plane_axis_labels
from lsdb.plotting.lines import curves_figure

__all__ = [
    "FIGURE_FORMATS",
    "add_path",
    "contour_figure",
    "contour_levels",
    "curves_figure",
    "input_names",
    "pc_label",
    "plane_axis_labels",
    "save_figure",
    "surface3d_figure",
]
