"""Planes in parameter space: the top PCA plane of a trajectory and coordinates of points in a plane.

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", §6, Fig. 9): random
directions are nearly orthogonal to an optimization path in high dimension, so the path is
drawn in the plane of the top principal directions of M = [θ_0 − θ_n; …; θ_{n−1} − θ_n],
where θ_n is the final point. The directions are unit vectors (no filter normalization), so a
coordinate is a distance in parameter space; the rows are not centred, as in the paper.
`plane_coordinates` places points in the span of any directions by least squares: for
orthonormal (PCA) directions it is the projection, for the plane through three checkpoints
(Garipov et al. 2018, Fig. 1) it puts the two others at (1, 0) and (0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lsdb.landscape.directions import direction_gram, pca_directions

__all__ = ["MAX_COMPONENTS", "PcaPlane", "pca_plane", "plane_coordinates"]

#: Explained variance ratios are reported for the top min(N − 1, MAX_COMPONENTS) directions.
MAX_COMPONENTS = 10


@dataclass(frozen=True)
class PcaPlane:
    """The top PCA directions of a trajectory (Li et al. 2018, §6)."""

    directions: Tensor  # (dims, P) orthonormal rows over the parameters
    explained_variance_ratio: np.ndarray  # top min(N − 1, 10) ratios σ_i² / Σσ²


def pca_plane(points: Tensor, dims: int = 2) -> PcaPlane:
    """PCA of the rows θ_i − θ_final of `points` (N, P), the final point being the last row.

    Raises `ValueError` (one line) when there are too few points or parameters.
    """
    n = len(points)
    if n < 2:
        raise ValueError(f"a PCA plane needs a trajectory of at least 2 checkpoints, got {n}")
    reported = min(n - 1, MAX_COMPONENTS)
    k = max(reported, dims)
    if k > min(points.shape):
        raise ValueError(f"a {dims}-D PCA plane needs at least {dims} checkpoints and {dims} parameters")
    directions, ratios = pca_directions(points, k=k)
    return PcaPlane(directions[:dims], ratios[:reported].double().cpu().numpy())


def plane_coordinates(directions: Tensor, deltas: Tensor) -> Tensor:
    """Least-squares coordinates c of each row δ in span(directions): δ ≈ Σ_j c_j d_j.

    For orthonormal directions (PCA) this is the projection ⟨d_j, δ⟩; for the plane through
    three checkpoints it gives (1, 0) and (0, 1) for the two others. Float64, on the CPU, from Gram
    matrices accumulated a slice at a time (`direction_gram`: no float64 copy of either matrix).
    """
    return (torch.linalg.pinv(direction_gram(directions)) @ direction_gram(directions, deltas)).T
