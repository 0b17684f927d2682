"""lsdb's loss-surface analyses: `interpolate`, `surface` and `trajectory`.

The visualizations of Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets",
NeurIPS) and the linear interpolation of Goodfellow, Vinyals & Saxe 2015 ("Qualitatively
characterizing neural network optimization problems", ICLR), as an ordinary lsdb plugin: it
uses only lsdb's public API and registers through the `register_analyses` and
`register_renderers` hooks (see `plugin`).
"""

from lsdb_surfaces.interpolate import INTERPOLATE, InterpolateParams
from lsdb_surfaces.surface import SURFACE, SurfaceParams
from lsdb_surfaces.trajectory import TRAJECTORY, TrajectoryParams

__all__ = ["INTERPOLATE", "SURFACE", "TRAJECTORY", "InterpolateParams", "SurfaceParams", "TrajectoryParams"]
