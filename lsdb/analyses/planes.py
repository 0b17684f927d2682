"""Planes through a checkpoint: the direction options `surface` and `eigenmap` share (public contract).

A plane (or a line) through θ_c is spanned by `dims` directions chosen by `PlaneSpec.directions`:

* ``random``: Gaussian directions, filter-normalized by default (Li et al. 2018, "Visualizing
  the Loss Landscape of Neural Nets", §4), bias and BatchNorm entries zeroed (``ignore=biasbn``);
* ``checkpoints``: d_j = θ_other_j − θ_c, the plane through three checkpoints (Garipov et al.
  2018, Fig. 1), unnormalized, so (1, 0) and (0, 1) are the other checkpoints;
* ``pca``: the top PCA directions of a trajectory (Li et al. 2018, §6), unit vectors;
* ``hessian``: eigenvectors of the loss Hessian at the centre (``eigenvectors=top`` or
  ``extremes``), from exact Hessian-vector products and Lanczos to `hessian_tol`.

For the same seed and spec, every analysis using `plane_directions` gets the same plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import torch
from torch import Tensor

from lsdb.analyses.context import Context, InputCheckpoint, by_step
from lsdb.errors import BadInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lsdb.landscape import ParamLayout

__all__ = [
    "DIRECTIONS",
    "EIGENVECTORS",
    "IGNORES",
    "NORMS",
    "PlaneDirections",
    "PlaneSpec",
    "check_plane_inputs",
    "hessian_directions",
    "param_mask",
    "plane_directions",
    "trajectory_points",
]

DIRECTIONS = ("random", "checkpoints", "pca", "hessian")
EIGENVECTORS = ("top", "extremes")
NORMS = ("filter", "layer", "none")
IGNORES = ("biasbn", "none")


@dataclass(frozen=True)
class PlaneSpec:
    """How to build the directions of a plane (or line): the fields analyses expose as parameters."""

    directions: str = "random"
    dims: int = 2
    norm: str = "filter"
    ignore: str = "biasbn"
    orthogonalize: bool = False
    eigenvectors: str = "top"
    hessian_tol: float = 1e-4
    split: str = "train"
    subset: int | None = None
    #: parameter-name globs (``transformer.h.*.attn.*``; ``!glob`` excludes): direction entries outside are zero
    params: str = ""


@dataclass
class PlaneDirections:
    """The directions of a line or plane, with what their construction reports."""

    matrix: Tensor  # (dims, P) over the parameters; buffers stay at the centre's
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)


def check_plane_inputs(
    spec: PlaneSpec,
    others: Sequence[InputCheckpoint],
    trajectory: Sequence[InputCheckpoint],
    analysis: str = "surface",
) -> None:
    """Refuse inputs that the chosen directions do not use, or too few of those they need (`BadInput`)."""
    if spec.directions == "checkpoints" and len(others) != spec.dims:
        raise BadInput(
            f"{analysis}: directions=checkpoints with dims={spec.dims} needs {spec.dims} 'others' "
            f"checkpoint(s), got {len(others)}"
        )
    if spec.directions != "checkpoints" and others:
        raise BadInput(f"{analysis}: 'others' checkpoints are only used with directions=checkpoints")
    if spec.directions == "pca" and len(trajectory) < spec.dims + 1:
        raise BadInput(
            f"{analysis}: directions=pca with dims={spec.dims} needs a trajectory of at least "
            f"{spec.dims + 1} checkpoints, got {len(trajectory)}"
        )
    if spec.directions != "pca" and trajectory:
        raise BadInput(f"{analysis}: a 'trajectory' input is only used with directions=pca")


def trajectory_points(ctx: Context, layout_model: torch.nn.Module, checkpoints: Sequence[InputCheckpoint]) -> Tensor:
    """(N, P_with_buffers) flat points of the checkpoints, in the layout of `layout_model`."""
    layout = ctx.layout(layout_model)
    return torch.stack([ctx.point(layout, c) for c in checkpoints])


def param_mask(layout: ParamLayout, pattern: str, width: int | None = None, analysis: str = "") -> Tensor:
    """The bool mask of the parameters `pattern` selects (see `lsdb.landscape.select_entries`); a
    pattern that selects nothing is a `BadInput` naming the closest parameter names."""
    from lsdb.landscape import selection_mask

    try:
        return selection_mask(layout, pattern, width)
    except ValueError as exc:
        raise BadInput(f"{analysis + ': ' if analysis else ''}{exc}") from None


def plane_directions(
    ctx: Context,
    spec: PlaneSpec,
    model: torch.nn.Module,
    theta: Tensor,
    others: Sequence[InputCheckpoint] = (),
    trajectory: Sequence[InputCheckpoint] = (),
    analysis: str = "surface",
) -> PlaneDirections:
    """The `spec.dims` directions of `spec.directions` through `theta` (the centre, full layout); with
    `spec.params`, every entry outside the selected parameters is zero (a per-layer plane)."""
    if spec.params:
        mask = param_mask(ctx.layout(model), spec.params, ctx.layout(model).n_params, analysis)  # before any work
    found = _plane_directions(ctx, spec, model, theta, others, trajectory, analysis)
    if spec.params:
        found.matrix.mul_(mask.to(found.matrix.device))  # in place: no second (dims, P) matrix
    return found


def _plane_directions(
    ctx: Context,
    spec: PlaneSpec,
    model: torch.nn.Module,
    theta: Tensor,
    others: Sequence[InputCheckpoint] = (),
    trajectory: Sequence[InputCheckpoint] = (),
    analysis: str = "surface",
) -> PlaneDirections:
    """The `spec.dims` directions of `spec.directions` through `theta` (the centre, full layout)."""
    from lsdb.landscape import pca_plane, plane_coordinates, random_directions

    layout = ctx.layout(model)
    n = layout.n_params
    if spec.directions == "random":
        plain = layout.parameters_only()
        gen = ctx.generator(0)
        bias_bn: Literal["ignore", "keep"] = "ignore" if spec.ignore == "biasbn" else "keep"
        norm = cast(Literal["filter", "layer", "none"], spec.norm)
        # built in place: the peak is θ and the (dims, P) matrix, without temporary directions
        return PlaneDirections(random_directions(plain, theta[:n], spec.dims, generator=gen, norm=norm,
                                                 bias_bn=bias_bn, dtype=ctx.dtype, device=ctx.device))
    if spec.directions == "checkpoints":
        matrix = torch.empty(len(others), n, dtype=ctx.dtype, device=ctx.device)
        for row, c in zip(matrix, others, strict=True):
            torch.sub(ctx.point(layout, c)[:n], theta[:n], out=row)
        return PlaneDirections(matrix)
    if spec.directions == "hessian":
        return hessian_directions(ctx, spec, model, analysis)
    points = trajectory_points(ctx, model, by_step(trajectory))[:, :n]
    try:
        plane = pca_plane(points, dims=spec.dims)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    path = plane_coordinates(plane.directions, points - theta[:n]).numpy()
    arrays = {"explained_variance_ratio": plane.explained_variance_ratio, "path_x": path[:, 0]}
    if spec.dims == 2:
        arrays["path_y"] = path[:, 1]
    ratios = plane.explained_variance_ratio
    scalars = {f"explained_variance_{j + 1}": float(ratios[j]) if j < len(ratios) else 0.0 for j in range(spec.dims)}
    return PlaneDirections(plane.directions.to(ctx.device, ctx.dtype), arrays, scalars)


def hessian_directions(
    ctx: Context, spec: PlaneSpec, model: torch.nn.Module, analysis: str = "surface"
) -> PlaneDirections:
    """Hessian eigenvectors at the centre as directions, with their eigenvalues (scalars and arrays)."""
    from lsdb.landscape.eigendirections import hessian_eigendirections

    x, y = ctx.data(spec.split)
    dtype = torch.float64 if ctx.dtype == torch.float64 else torch.float32
    loss = cast(Literal["cross_entropy", "mse"], ctx.loss)
    which = cast(Literal["top", "extremes"], spec.eigenvectors)
    try:
        found = hessian_eigendirections(model, x, y, dims=spec.dims, which=which, loss=loss, subset=spec.subset,
                                        seed=ctx.seed, tol=spec.hessian_tol, generator=ctx.generator(0), dtype=dtype,
                                        device=ctx.device)
    except ValueError as exc:
        raise BadInput(f"{analysis}: directions=hessian: {exc}") from exc
    values = found.eigenvalues.tolist()
    scalars = {f"eigenvalue_{j + 1}": v for j, v in enumerate(values)}
    scalars.update({"eigen_hvps": float(found.hvps), "eigen_converged": float(found.converged)})
    arrays = {"eigenvalues": found.eigenvalues.numpy(), "eigenvalue_errors": found.errors.numpy()}
    return PlaneDirections(found.vectors.to(ctx.device, ctx.dtype), arrays, scalars)
