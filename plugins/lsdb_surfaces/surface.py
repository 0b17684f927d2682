"""`surface`: the loss on a line or a plane through one checkpoint (Li et al. 2018).

The loss at θ_c + x d1 (+ y d2) on a regular grid (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets", §3–4). The directions are

* ``random``: Gaussian directions, filter-normalized by default (§4), with bias and
  BatchNorm entries zeroed (``ignore=biasbn``) as in the paper's code;
* ``checkpoints``: d_j = θ_other_j − θ_c, the plane through three checkpoints (or the line
  through two), unnormalized, so (1, 0) and (0, 1) are the other checkpoints (as in the
  planes of Garipov et al. 2018, Fig. 1);
* ``pca``: the top PCA directions of a trajectory, unit vectors whose coefficients are
  distances in parameter space (§6; see `trajectory`);
* ``hessian``: eigenvectors of the loss Hessian at the centre (over `split`, or its `subset`),
  unit vectors: the top two (``eigenvectors=top``) or the largest and the most negative
  (``eigenvectors=extremes``), from exact Hessian-vector products and Lanczos to
  `hessian_tol` (`lsdb.landscape.eigendirections`). Their eigenvalues are reported
  (``eigenvalue_1``, ``eigenvalue_2``); along u_j the loss is ≈ L + λ_j x²/2 near the centre.

Besides the surface it reports two shape summaries: ε-sharpness, the rise of the loss within
a radius of the centre (after Keskar et al. 2017, "On Large-Batch Training for Deep
Learning: Generalization Gap and Sharp Minima", §2.2.1, restricted to the grid), and
`convexity`, the fraction of interior grid points where the finite-difference Hessian of the
surface is positive semidefinite (a discrete counterpart of the |λ_min/λ_max| maps of §7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lsdb.landscape import (
    PRECISION_EPSILON,
    PRECISIONS,
    Evaluator,
    check_precision,
    convexity,
    direction_gram,
    evaluate_grid,
    grid_axis,
    grid_coefficients,
    orthogonalize,
    plane_coordinates,
    precision_error,
    reduced_precision,
    sharpness,
)
from lsdb.plugin import (
    BN_MODES,
    DIRECTIONS,
    EIGENVECTORS,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    Footprint,
    InputCheckpoint,
    PlaneSpec,
    Slot,
    accuracy_of,
    check_plane_inputs,
    finite_scalars,
    plane_directions,
    single,
)


@dataclass(frozen=True)
class SurfaceParams:
    """Parameters of `surface`."""

    directions: str = field(
        default="random",
        metadata={
            "help": "random (Li §4), checkpoints (towards the 'others'), pca (of the 'trajectory', Li §6) or "
                    "hessian (eigenvectors of the loss Hessian at the centre)",
            "choices": DIRECTIONS,
        },
    )
    dims: int = field(default=2, metadata={"help": "1 (a line) or 2 (a plane)", "choices": (1, 2)})
    norm: str = field(
        default="filter",
        metadata={
            "help": "normalization of random directions: filter (Li §4), layer or none",
            "choices": ("filter", "layer", "none"),
        },
    )
    ignore: str = field(
        default="biasbn",
        metadata={
            "help": "random directions: biasbn zeroes bias and BatchNorm entries; none normalizes them too",
            "choices": ("biasbn", "none"),
        },
    )
    orthogonalize: bool = field(default=False, metadata={"help": "Gram–Schmidt d2 against d1 (norms kept)"})
    eigenvectors: str = field(
        default="top",
        metadata={"help": "directions=hessian: top (the two largest eigenvalues) or extremes (largest and most "
                          "negative)", "choices": EIGENVECTORS},
    )
    hessian_tol: float = field(
        default=1e-4, metadata={"help": "directions=hessian: relative tolerance of the eigenvalues", "min": 0.0}
    )
    xmin: float = field(default=-1.0, metadata={"help": "first x coefficient"})
    xmax: float = field(default=1.0, metadata={"help": "last x coefficient"})
    xnum: int = field(default=51, metadata={"help": "grid points along x", "min": 2, "max": 2048})
    ymin: float = field(default=-1.0, metadata={"help": "first y coefficient (dims=2)"})
    ymax: float = field(default=1.0, metadata={"help": "last y coefficient (dims=2)"})
    ynum: int = field(default=51, metadata={"help": "grid points along y (dims=2)", "min": 2, "max": 2048})
    split: str = field(default="train", metadata={"help": "split the loss is evaluated on", "choices": SPLITS})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval or recompute", "choices": BN_MODES})
    sharpness_radius: float = field(
        default=0.25,
        metadata={"help": "ε of the ε-sharpness: grid points within this distance of the centre", "min": 0.0},
    )
    subset: int | None = field(
        default=None,
        metadata={"help": "evaluate on a fixed random subset of this many examples (faster, noisier)", "min": 2},
    )
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); every other parameter stays at the centre "
                          "(direction entries zero)"},
    )
    save_directions: bool = field(default=False, metadata={"help": "store the directions (dims, P) as an array"})
    rows: tuple[int, ...] = field(
        default=(),
        metadata={"help": "evaluate only grid rows [start, stop) of y (of x for dims=1): one tile of a fan-out"},
    )
    precision: str = field(
        default="float32",
        metadata={"help": "float32; bf16: bfloat16 autocast (faster on CPUs with bf16 support, less exact); or tf32 "
                          "(CUDA only: tensor-core float32 products, less exact); a reduced precision's max and "
                          "median relative error against float32 on 16 grid points are reported",
                  "choices": PRECISIONS, "key_omit_default": True},
    )

    def __post_init__(self) -> None:
        if self.rows and (len(self.rows) != 2 or not 0 <= self.rows[0] < self.rows[1] <= self._rows_total()):
            raise ValueError(f"rows must be [start, stop) within 0..{self._rows_total()}, got {list(self.rows)}")
        if not self.xmin < self.xmax:
            raise ValueError(f"xmin ({self.xmin}) must be below xmax ({self.xmax})")
        if self.dims == 2 and not self.ymin < self.ymax:
            raise ValueError(f"ymin ({self.ymin}) must be below ymax ({self.ymax})")


    def _rows_total(self) -> int:
        return self.ynum if self.dims == 2 else self.xnum

    @property
    def plane(self) -> PlaneSpec:
        """The plane's directions, as `lsdb.plugin.plane_directions` takes them."""
        return PlaneSpec(directions=self.directions, dims=self.dims, norm=self.norm, ignore=self.ignore,
                         orthogonalize=self.orthogonalize, eigenvectors=self.eigenvectors,
                         hessian_tol=self.hessian_tol, split=self.split, subset=self.subset, params=self.params)


def run_surface(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: SurfaceParams) -> AnalysisOutput:
    """Evaluate the loss on a 1D or 2D grid of θ_c + x d1 (+ y d2) (Li et al. 2018, §3–4)."""
    center = single(inputs, "center")
    others, trajectory = list(inputs.get("others", ())), list(inputs.get("trajectory", ()))
    check_plane_inputs(params.plane, others, trajectory)
    ctx.progress(0.0, "building directions")
    model = ctx.build_model(center.state())
    theta = ctx.layout(model).flatten(model, dtype=ctx.dtype, device=ctx.device)
    found = plane_directions(ctx, params.plane, model, theta, others, trajectory)
    del theta  # the evaluator's own θ0 (`ev.theta0`) is the same vector: one parameter copy less at the peak
    dirs = found.matrix
    if params.orthogonalize and params.dims == 2:
        dirs = orthogonalize(dirs, keep_norm=True)
    n = dirs.shape[1]

    xs = grid_axis(params.xmin, params.xmax, params.xnum)
    ys = grid_axis(params.ymin, params.ymax, params.ynum) if params.dims == 2 else None
    x_eval, y_eval = xs, ys
    if params.rows:  # one tile of a fan-out: only these rows are evaluated
        r0, r1 = params.rows
        if ys is not None:
            y_eval = ys[r0:r1]
        else:
            x_eval = xs[r0:r1]
    ev = ctx.evaluator(model, params.split, params.bn, params.subset)
    del model  # the evaluator works on its own copy
    theta = ev.theta0
    try:
        check_precision(ctx.dtype, ev.device, params.precision)
    except ValueError as exc:
        raise BadInput(f"surface: {exc}") from None
    with reduced_precision(params.precision, ev.device):
        at_center = ev.at_points(theta.unsqueeze(0), should_cancel=ctx.should_cancel)
        ctx.progress(0.05, "evaluating the grid")
        grid = evaluate_grid(
            ev,
            dirs,
            x_eval,
            y_eval,
            theta,
            should_cancel=ctx.should_cancel,
            progress=ctx.span(0.05, 0.98, "evaluating the grid"),
        )
    loss = grid.loss.double().numpy()
    acc = accuracy_of(grid, loss.shape)
    loss_se = grid.stderr.double().numpy() if grid.stderr is not None else None
    if ys is not None:  # (nx, ny) -> matplotlib's (ny, nx)
        loss, acc = loss.T.copy(), acc.T.copy()
        loss_se = loss_se.T.copy() if loss_se is not None else None

    center_loss = float(at_center.loss[0])
    arrays: dict[str, np.ndarray] = {"x": xs.numpy(), "loss": loss, "acc": acc}
    if ys is not None:
        arrays["y"] = ys.numpy()
    if loss_se is not None:  # subset=N: standard error of each point's subset mean (with the FPC)
        arrays["loss_se"] = loss_se
    gram = direction_gram(dirs)  # float64, without a float64 copy of the directions
    arrays["direction_norms"] = gram.diagonal().sqrt().numpy()
    arrays.update(found.arrays)
    if params.directions == "checkpoints":
        xy = plane_coordinates(dirs, found.matrix).numpy()  # (1, 0) and (0, 1) unless orthogonalized
        arrays["others_x"] = xy[:, 0]
        if params.dims == 2:
            arrays["others_y"] = xy[:, 1]
    if params.save_directions:
        # numpy has no bfloat16: those directions are stored as the float32 numbers they are
        arrays["directions"] = (dirs.float() if dirs.dtype == torch.bfloat16 else dirs).cpu().numpy()

    scalars = {"center_loss": center_loss, **found.scalars}
    if at_center.stderr is not None:
        scalars["center_loss_se"] = float(at_center.stderr[0])
    if at_center.accuracy is not None:
        scalars["center_acc"] = float(at_center.accuracy[0])
    if params.dims == 2:
        scalars["direction_cosine"] = float(gram[0, 1] / (gram[0, 0].sqrt() * gram[1, 1].sqrt()).clamp_min(1e-300))
    if params.precision != "float32":
        scalars.update(_precision_scalars(params.precision, ev, dirs, xs, ys, theta, ctx))
    eps = PRECISION_EPSILON.get(params.precision, float(torch.finfo(ctx.dtype).eps))
    if not params.rows:
        scalars.update(_grid_scalars(params, arrays, center_loss, eps))
    attrs = {
        "eps": eps,
        "precision": params.precision,
        "center": center.name,
        "directions": params.directions,
        "n_params": int(n),
        "params": params.params,
        "others": ", ".join(c.name for c in others),
    }
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


def _precision_scalars(precision: str, ev: Evaluator, dirs: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor | None,
                       theta: torch.Tensor, ctx: Context) -> dict[str, float]:
    """Error of the bf16 or tf32 losses against float32 at a fixed seeded sample of the whole grid (the same points in
    every tile, so the tiles of a fan-out report the same figures)."""
    every = grid_coefficients(xs) if ys is None else grid_coefficients(ys, xs).flip(1)
    err = precision_error(ev, precision, dirs, every, theta, should_cancel=ctx.should_cancel)
    return {f"{precision}_max_rel_error": err.max_rel, f"{precision}_median_rel_error": err.median_rel}


def _grid_scalars(
    params: SurfaceParams, arrays: dict[str, np.ndarray], center_loss: float, eps: float
) -> dict[str, float]:
    """min/max loss, ε-sharpness and convexity of a whole grid (also used to merge tiles)."""
    loss, xs, ys = arrays["loss"], arrays["x"], arrays.get("y")
    finite = np.isfinite(loss)
    out = {
        "min_loss": float(loss[finite].min()) if finite.any() else float("nan"),
        "max_loss": float(loss[finite].max()) if finite.any() else float("nan"),
    }
    sharp = sharpness(xs, ys, loss, center_loss, params.sharpness_radius)
    if sharp is not None:
        out["sharpness"], out["sharpness_max"] = sharp
        out["sharpness_keskar"] = 100.0 * sharp[1] / (1.0 + center_loss)
    out["convexity"] = convexity(loss, xs, ys, eps=eps)
    return out


def tile_surface(params: SurfaceParams, tile_size: int) -> list[dict[str, Any]]:
    """Split the grid into row ranges of about `tile_size` points each ([] when one job will do)."""
    total = params.xnum * (params.ynum if params.dims == 2 else 1)
    if params.rows or total <= tile_size:
        return []
    n_rows = params._rows_total()
    per_row = params.xnum if params.dims == 2 else 1
    step = max(1, tile_size // per_row)
    return [{"rows": [a, min(a + step, n_rows)]} for a in range(0, n_rows, step)]


def merge_surface(params: SurfaceParams, outputs: list[AnalysisOutput]) -> AnalysisOutput:
    """Stack the tiles' rows back into one grid and compute the whole-grid scalars."""
    first = outputs[0]
    arrays = dict(first.arrays)
    for key in ("loss", "acc", "loss_se") if "loss_se" in arrays else ("loss", "acc"):
        arrays[key] = np.concatenate([np.asarray(o.arrays[key]) for o in outputs], axis=0)
    scalars = {k: v for k, v in first.scalars.items() if k not in ("min_loss", "max_loss")}
    eps = float(first.attrs["eps"])
    scalars.update(_grid_scalars(params, arrays, float(first.scalars["center_loss"]), eps))
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=dict(first.attrs))


#: Host bytes per grid point: loss and accuracy in float64, their (ny, nx) copies and the evaluator's totals.
BYTES_PER_POINT = 64


def surface_memory(params: SurfaceParams) -> int:
    """Bytes the grid's arrays need (the computed rows only, for a tile): checked before work starts."""
    rows = (params.rows[1] - params.rows[0]) if params.rows else params._rows_total()
    return BYTES_PER_POINT * rows * (params.xnum if params.dims == 2 else 1)


def surface_copies(params: SurfaceParams, footprint: Footprint) -> float:
    """Parameter copies held at the peak (measured by scripts/bench_memory.py, rounded up): the model,
    θ0, the directions and the evaluator's flat copy; for a PCA the stacked trajectory instead, and
    for hessian directions the Krylov basis besides."""
    others = max(0, footprint.n_inputs - 1)
    if params.directions == "pca":
        return 3.5 + 3.75 * others
    return 8.0 + (100.0 if params.directions == "hessian" else 0.0)


SURFACE = AnalysisSpec(
    name="surface",
    version=1,
    run=run_surface,
    copies=surface_copies,
    params=SurfaceParams,
    inputs=(
        Slot("center", help="the checkpoint at the origin of the grid"),
        Slot("others", min=0, max=2, help="checkpoints spanning the plane (directions=checkpoints)"),
        Slot(
            "trajectory",
            kind="trajectory",
            min=0,
            max=None,
            help="a run whose checkpoints give PCA directions (directions=pca)",
        ),
    ),
    resources="any",
    tile=tile_surface,
    merge=merge_surface,
    memory=surface_memory,
    description=(
        "The loss on a line or plane through a checkpoint: random filter-normalized, checkpoint, PCA or Hessian "
        "eigenvector directions (Li et al. 2018, §3-4, §6-7).\n\nArrays: x, y, loss and acc ((ny, nx), or (nx,) "
        "for dims=1), direction_norms; others_x/others_y (checkpoints), path_x/path_y and "
        "explained_variance_ratio (pca), eigenvalues and eigenvalue_errors (hessian), directions "
        "(save_directions), loss_se (subset: standard error of each point's loss). Scalars: center_loss, "
        "center_loss_se (subset), center_acc, min_loss, max_loss, sharpness, sharpness_max, "
        "sharpness_keskar, convexity, direction_cosine, explained_variance_1/2 (pca), eigenvalue_1/2, eigen_hvps, "
        "eigen_converged (hessian), bf16_max_rel_error and bf16_median_rel_error (precision=bf16; tf32_... for "
        "precision=tf32): relative error of the reduced-precision losses against float32 at 16 seeded grid points."
    ),
)
