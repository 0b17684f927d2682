"""`trajectory`: an optimization path projected onto its top PCA directions, over the loss on that plane.

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", §6, Fig. 9): random
directions are nearly orthogonal to an optimization path in high dimension, so the path is
drawn in the plane of the top two principal directions of M = [θ_0 − θ_n; …; θ_{n−1} − θ_n],
where θ_n is the final checkpoint. The directions are unit vectors (no filter normalization),
so a coordinate is a distance in parameter space; the axes report the fraction of variance
each direction explains. PCA is over the parameters only (BatchNorm running statistics are
not parameters); the rows are not centred, as in the paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lsdb.landscape import evaluate_grid, grid_axis, pca_plane, plane_coordinates
from lsdb.plugin import (
    BN_MODES,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    accuracy_of,
    by_step,
    finite_scalars,
    trajectory_points,
)


@dataclass(frozen=True)
class TrajectoryParams:
    """Parameters of `trajectory`."""

    xnum: int = field(default=21, metadata={"help": "grid points along the 1st PCA direction", "min": 2, "max": 2048})
    ynum: int = field(default=21, metadata={"help": "grid points along the 2nd PCA direction", "min": 2, "max": 2048})
    margin: float = field(
        default=0.2,
        metadata={"help": "the grid extends this fraction of the path's extent beyond it on each side", "min": 0.0},
    )
    split: str = field(default="train", metadata={"help": "split the loss surface is evaluated on", "choices": SPLITS})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval or recompute", "choices": BN_MODES})
    subset: int | None = field(
        default=None,
        metadata={"help": "evaluate on a fixed random subset of this many examples (faster, noisier)", "min": 2},
    )


def _axis(values: np.ndarray, fallback: float, margin: float, num: int) -> Tensor:
    lo, hi = float(values.min()), float(values.max())
    extent = hi - lo if hi > lo else fallback
    return grid_axis(lo - margin * extent, hi + margin * extent, num)


def run_trajectory(
    ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: TrajectoryParams
) -> AnalysisOutput:
    """Project a trajectory onto its top-2 PCA plane and evaluate the loss on that plane (Li et al. 2018, §6)."""
    checkpoints = by_step(inputs.get("trajectory", ()))
    if len(checkpoints) < 2:
        raise BadInput(f"trajectory needs at least 2 checkpoints, got {len(checkpoints)}")
    ctx.progress(0.0, "loading the trajectory")
    final = checkpoints[-1]
    model = ctx.build_model(final.state())
    n_params = ctx.layout(model).n_params
    points = trajectory_points(ctx, model, checkpoints)
    params_part = points[:, :n_params]
    ctx.progress(0.05, "PCA of the trajectory")
    try:
        plane = pca_plane(params_part, dims=2)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    coords = plane_coordinates(plane.directions, params_part - params_part[-1]).numpy()
    steps_known = all(c.step is not None for c in checkpoints)
    steps = np.array([c.step if steps_known else i for i, c in enumerate(checkpoints)], dtype=np.int64)

    extent_x = float(coords[:, 0].max() - coords[:, 0].min()) or 1.0
    xs = _axis(coords[:, 0], extent_x, params.margin, params.xnum)
    ys = _axis(coords[:, 1], extent_x, params.margin, params.ynum)
    ev = ctx.evaluator(model, params.split, params.bn, params.subset)
    path = ev.at_points(points, should_cancel=ctx.should_cancel)
    grid = evaluate_grid(
        ev,
        plane.directions,
        xs,
        ys,
        points[-1],
        should_cancel=ctx.should_cancel,
        progress=ctx.span(0.1, 1.0, "loss on the PCA plane"),
    )
    loss = grid.loss.double().numpy().T  # (ny, nx): z[j, i] at (x[i], y[j])
    acc = accuracy_of(grid, tuple(grid.loss.shape)).T

    steps_between = torch.linalg.vector_norm(params_part[1:] - params_part[:-1], dim=1)
    path_loss = path.loss.double().numpy()
    path_acc = accuracy_of(path, path_loss.shape)
    ratios = plane.explained_variance_ratio
    scalars = {
        "explained_variance_1": float(ratios[0]),
        "explained_variance_2": float(ratios[1]) if len(ratios) > 1 else 0.0,
        "path_length": float(steps_between.sum()),
        "projected_path_length": float(np.linalg.norm(np.diff(coords, axis=0), axis=1).sum()),
        "start_distance": float(torch.linalg.vector_norm(params_part[0] - params_part[-1])),
        "start_loss": float(path_loss[0]),
        "final_loss": float(path_loss[-1]),
        "min_loss": float(np.nanmin(loss)) if np.isfinite(loss).any() else float("nan"),
        "max_loss": float(np.nanmax(loss)) if np.isfinite(loss).any() else float("nan"),
    }
    if ctx.loss == "cross_entropy":
        scalars["final_acc"] = float(path_acc[-1])
    arrays = {
        "coords": coords,
        "explained_variance_ratio": ratios,
        "steps": steps,
        "path_loss": path_loss,
        "path_acc": path_acc,
        "x": xs.numpy(),
        "y": ys.numpy(),
        "loss": loss,
        "acc": acc,
    }
    attrs = {"final": final.name, "n_checkpoints": len(checkpoints), "steps_are_positions": not steps_known}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


TRAJECTORY = AnalysisSpec(
    name="trajectory",
    version=1,
    run=run_trajectory,
    copies=lambda p, f: 5.0 + 3.5 * f.n_inputs,
    params=TrajectoryParams,
    inputs=(Slot("trajectory", kind="trajectory", min=2, max=None, help="a run's checkpoints, ordered by step"),),
    resources="any",
    description=(
        "An optimization path on its top-2 PCA plane, over the loss on that plane (Li et al. 2018, §6, Fig. 9).\n\n"
        "Arrays: coords (N, 2) (the final checkpoint at the origin), explained_variance_ratio (top min(N−1, 10)), "
        "steps, path_loss, path_acc, x, y, loss and acc (ny, nx). Scalars: explained_variance_1/2, path_length "
        "(in parameter space), projected_path_length, start_distance, start_loss, final_loss, final_acc, "
        "min_loss, max_loss."
    ),
)
