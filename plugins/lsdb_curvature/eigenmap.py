"""`eigenmap`: λmax, λmin and |λmin/λmax| of the loss Hessian over a plane (Li et al. 2018, §7, Fig. 7).

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", NeurIPS, §7) check whether a
filter-normalized surface tells the truth about convexity: at each point of the plane they
compute the extreme eigenvalues of the full Hessian and map |λmin/λmax|. Where the surface
looks convex the ratio is near zero (negative curvature is negligible); in chaotic regions
it is not. The plane is the one `surface` draws: the same direction options and, for the
same seed, the same random filter-normalized directions (built by `lsdb.plugin.plane_directions`).

Each point is one Lanczos run (`lsdb.landscape.lanczos`) for both ends of the spectrum,
stopped when λmax is within `tol` relative and λmin within `tol`·|λmax|. It is made fast by
visiting the grid row by row in a snake (boustrophedon) order and warm-starting every point
from the top and bottom Ritz vectors of the previous one, its neighbour, plus a `start_noise`
share of a random vector. A warm start converges at once to the neighbour's eigenvalues, so
every point takes at least `min_iter` Lanczos steps, enough for an eigenvalue that overtook
them to emerge from the random share: measured on the trained digits MLP (21×21 grid,
tol 1e-2, against tol 1e-4), warm starts without it stopped on the wrong λmin at 7 of 63
points, with ``min_iter=8`` at none (cold starts at tol 1e-2: 14); over all 441 points,
``min_iter=6`` saved 17 % of the products but missed λmax by up to 13 % at some points, while
``min_iter=8`` kept every point within 1.1e-2·λmax (3 just over 1e-2). ``warm_start=false`` starts
every point from its own random vector, which does not depend on the order. Hessian products
at one point are not batched: a Lanczos step needs the previous one, and vmapped products
measured slower per vector on a CPU.

Tiles: `rows` and `cols` restrict the run to a sub-rectangle ``[start, stop)`` of grid rows
(y) and columns (x); its arrays cover that rectangle and say where it lies (`row_index`,
`col_index`). `tile` splits a large request into bands of rows and `merge` puts the bands back
together; with warm starts only each band's first point starts cold, so a tiled map equals the
untiled one within the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lsdb.landscape import grid_axis, orthogonalize
from lsdb.landscape.lanczos import lanczos
from lsdb.plugin import (
    DIRECTIONS,
    EIGENVECTORS,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    PlaneSpec,
    Slot,
    check_plane_inputs,
    finite_scalars,
    plane_directions,
    single,
)
from lsdb_curvature.hessian import BN_MODES, HVP_METHODS, hessian_operator, ratio

#: Per-point arrays, each (rows, cols) of the computed rectangle.
POINT_ARRAYS = ("lambda_max", "lambda_min", "ratio", "loss", "hvps", "converged")


@dataclass(frozen=True)
class EigenmapParams:
    """Parameters of `eigenmap`."""

    directions: str = field(default="random", metadata={"help": "as surface: random (Li §4), checkpoints, pca "
                                                                "or hessian", "choices": DIRECTIONS})
    eigenvectors: str = field(default="top", metadata={"help": "directions=hessian: top or extremes (as surface)",
                                                       "choices": EIGENVECTORS})
    hessian_tol: float = field(default=1e-4, metadata={"help": "directions=hessian: tolerance of the directions' "
                                                               "eigenvalues", "min": 0.0})
    norm: str = field(default="filter", metadata={"help": "normalization of random directions",
                                                  "choices": ("filter", "layer", "none")})
    ignore: str = field(default="biasbn", metadata={"help": "random directions: biasbn zeroes bias and BatchNorm "
                                                            "entries; none normalizes them too",
                                                    "choices": ("biasbn", "none")})
    orthogonalize: bool = field(default=False, metadata={"help": "Gram–Schmidt d2 against d1 (norms kept)"})
    xmin: float = field(default=-1.0, metadata={"help": "first x coefficient"})
    xmax: float = field(default=1.0, metadata={"help": "last x coefficient"})
    xnum: int = field(default=21, metadata={"help": "grid points along x", "min": 2, "max": 1024})
    ymin: float = field(default=-1.0, metadata={"help": "first y coefficient"})
    ymax: float = field(default=1.0, metadata={"help": "last y coefficient"})
    ynum: int = field(default=21, metadata={"help": "grid points along y", "min": 2, "max": 1024})
    split: str = field(default="train", metadata={"help": "split the loss is taken over", "choices": SPLITS})
    subset: int | None = field(default=None, metadata={"help": "use a fixed random subset of this many examples",
                                                       "min": 1})
    batch_size: int | None = field(default=None, metadata={"help": "examples per pass (default: memory permitting)",
                                                           "min": 1})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval (running statistics of the centre) or batch",
                                              "choices": BN_MODES})
    method: str = field(default="reverse", metadata={"help": "Hessian products: reverse or forward",
                                                     "choices": HVP_METHODS})
    tol: float = field(default=1e-2, metadata={"help": "relative tolerance of λmax; λmin to tol·|λmax|", "min": 0.0})
    max_iter: int = field(default=200, metadata={"help": "at most this many Lanczos steps per point", "min": 2})
    warm_start: bool = field(default=True, metadata={"help": "start each point from its neighbour's eigenvectors"})
    start_noise: float = field(default=0.3, metadata={"help": "share of a random vector in a warm start",
                                                      "min": 0.0, "max": 1.0})
    min_iter: int = field(default=8, metadata={"help": "Lanczos steps at least, per point", "min": 2})
    convex_below: float = field(default=0.05, metadata={"help": "convex_fraction counts points with "
                                                                "|λmin/λmax| below this", "min": 0.0})
    rows: list[int] = field(default_factory=list, metadata={"help": "[start, stop) of the y rows to compute "
                                                                    "(a tile); empty: all"})
    cols: list[int] = field(default_factory=list, metadata={"help": "[start, stop) of the x columns to compute; "
                                                                    "empty: all"})
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); every other parameter stays at the centre "
                          "(direction entries zero)"},
    )

    def __post_init__(self) -> None:
        if not self.xmin < self.xmax or not self.ymin < self.ymax:
            raise ValueError("the grid needs xmin < xmax and ymin < ymax")
        _span(self.rows, self.ynum, "rows")
        _span(self.cols, self.xnum, "cols")


def _span(given: list[int], size: int, name: str) -> tuple[int, int]:
    if not given:
        return 0, size
    if len(given) != 2 or not 0 <= given[0] < given[1] <= size:
        raise ValueError(f"{name} must be [start, stop) with 0 <= start < stop <= {size}, got {list(given)}")
    return int(given[0]), int(given[1])


def snake_order(rows: tuple[int, int], cols: tuple[int, int]) -> list[tuple[int, int]]:
    """(row, col) of a rectangle row by row, alternating direction, so that consecutive points are neighbours."""
    order = []
    for k, i in enumerate(range(*rows)):
        js = range(*cols) if k % 2 == 0 else range(cols[1] - 1, cols[0] - 1, -1)
        order += [(i, j) for j in js]
    return order


def map_scalars(
    arrays: Mapping[str, np.ndarray], xs: np.ndarray, ys: np.ndarray, convex_below: float
) -> dict[str, float]:
    """Summaries of the computed points (the same for a whole run and for merged tiles)."""
    r, lmax, lmin = arrays["ratio"], arrays["lambda_max"], arrays["lambda_min"]
    done = np.isfinite(lmax)
    finite = np.isfinite(r) & done
    out: dict[str, float] = {
        "points": float(done.sum()),
        "hvp_count": float(np.nansum(arrays["hvps"])),
        "mean_hvps_per_point": float(np.nanmean(arrays["hvps"])) if done.any() else math.nan,
        "unconverged": float((done & (arrays["converged"] < 0.5)).sum()),
    }
    if finite.any():
        out.update({
            "ratio_mean": float(r[finite].mean()),
            "ratio_median": float(np.median(r[finite])),
            "ratio_max": float(r[finite].max()),
            "convex_fraction": float((r[finite] < convex_below).mean()),
            "lambda_max_max": float(lmax[done].max()),
            "lambda_min_min": float(lmin[done].min()),
        })
    rows, cols = arrays["row_index"], arrays["col_index"]
    ci, cj = np.flatnonzero(ys == 0.0), np.flatnonzero(xs == 0.0)
    if len(ci) and len(cj) and ci[0] in rows and cj[0] in cols:
        a, b = int(np.flatnonzero(rows == ci[0])[0]), int(np.flatnonzero(cols == cj[0])[0])
        out.update({"center_lambda_max": float(lmax[a, b]), "center_lambda_min": float(lmin[a, b]),
                    "center_ratio": float(r[a, b])})
    return out


def run_eigenmap(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: EigenmapParams) -> AnalysisOutput:
    """λmax, λmin and |λmin/λmax| on a grid of θ_c + x d1 + y d2 (Li et al. 2018, §7)."""
    center = single(inputs, "center")
    others, trajectory = list(inputs.get("others", ())), list(inputs.get("trajectory", ()))
    plane = PlaneSpec(directions=params.directions, dims=2, norm=params.norm, ignore=params.ignore,
                      orthogonalize=params.orthogonalize, split=params.split, subset=params.subset,
                      eigenvectors=params.eigenvectors, hessian_tol=params.hessian_tol, params=params.params)
    check_plane_inputs(plane, others, trajectory, "eigenmap")
    ctx.progress(0.0, "building directions")
    model = ctx.build_model(center.state())
    theta_full = ctx.layout(model).flatten(model, dtype=ctx.dtype, device=ctx.device)
    found = plane_directions(ctx, plane, model, theta_full, others, trajectory, "eigenmap")
    dirs = orthogonalize(found.matrix, keep_norm=True) if params.orthogonalize else found.matrix
    op = hessian_operator(ctx, model, params.split, params.subset, params.bn, params.batch_size, params.method)
    theta = op.theta.clone()
    dirs = dirs.to(op.device, op.dtype)
    xs, ys = grid_axis(params.xmin, params.xmax, params.xnum), grid_axis(params.ymin, params.ymax, params.ynum)
    rows, cols = _span(params.rows, params.ynum, "rows"), _span(params.cols, params.xnum, "cols")
    shape = (rows[1] - rows[0], cols[1] - cols[0])
    out = {name: np.full(shape, np.nan) for name in POINT_ARRAYS}
    order = snake_order(rows, cols)
    previous: torch.Tensor | None = None
    for n_done, (i, j) in enumerate(order):
        ctx.progress(0.02 + 0.96 * n_done / len(order), f"point {n_done + 1} of {len(order)}")
        op.set_point(theta + float(xs[j]) * dirs[0] + float(ys[i]) * dirs[1])
        before = op.hvp_count
        eig = lanczos(op.matvec, op.n, k=1, bottom=1, tol=params.tol, max_iter=params.max_iter,
                      start=previous if params.warm_start else None, start_noise=params.start_noise,
                      generator=ctx.generator(1 + i * params.xnum + j), dtype=op.dtype, device=op.device,
                      min_iter=params.min_iter)
        if eig.top_vectors is not None and eig.bottom_vectors is not None:
            previous = torch.cat([eig.top_vectors, eig.bottom_vectors])
        a, b = i - rows[0], j - cols[0]
        lam_max, lam_min = float(eig.top[0]), float(eig.bottom[0])
        out["lambda_max"][a, b], out["lambda_min"][a, b] = lam_max, lam_min
        out["ratio"][a, b] = ratio(lam_min, lam_max)
        out["loss"][a, b], out["hvps"][a, b] = op.loss, op.hvp_count - before
        out["converged"][a, b] = float(eig.converged)
    arrays: dict[str, np.ndarray] = {"x": xs.numpy(), "y": ys.numpy(), **out,
                                     "row_index": np.arange(*rows), "col_index": np.arange(*cols),
                                     "direction_norms": torch.linalg.vector_norm(dirs, dim=1, dtype=torch.float64)
                                     .cpu().numpy()}
    arrays.update(found.arrays)
    scalars = {**map_scalars(arrays, arrays["x"], arrays["y"], params.convex_below), **found.scalars}
    attrs = {"center": center.name, "directions": params.directions, "n_params": int(op.n),
             "others": ", ".join(c.name for c in others)}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


def tile_eigenmap(params: EigenmapParams, tile_size: int) -> list[dict[str, Any]]:
    """Bands of whole rows with about `tile_size` points each; [] when one job will do (or already a tile)."""
    if params.rows or params.cols:
        return []
    per = max(1, tile_size // params.xnum)
    if params.ynum <= per:
        return []
    return [{"rows": [a, min(a + per, params.ynum)]} for a in range(0, params.ynum, per)]


def merge_eigenmap(params: EigenmapParams, outputs: list[AnalysisOutput]) -> AnalysisOutput:
    """The whole map from its tiles (any rectangles): point arrays placed by `row_index`/`col_index`."""
    if not outputs:
        raise BadInput("eigenmap: nothing to merge")
    first = {k: np.asarray(v) for k, v in outputs[0].arrays.items()}
    xs, ys = first["x"], first["y"]
    rows, cols = _span(params.rows, params.ynum, "rows"), _span(params.cols, params.xnum, "cols")
    full = {name: np.full((rows[1] - rows[0], cols[1] - cols[0]), np.nan) for name in POINT_ARRAYS}
    for o in outputs:
        r = np.asarray(o.arrays["row_index"]) - rows[0]
        c = np.asarray(o.arrays["col_index"]) - cols[0]
        for name in POINT_ARRAYS:
            full[name][np.ix_(r, c)] = np.asarray(o.arrays[name])
    arrays = {**{k: v for k, v in first.items() if k not in full}, **full,
              "row_index": np.arange(*rows), "col_index": np.arange(*cols)}
    scalars = map_scalars(arrays, xs, ys, params.convex_below)
    scalars.update({k: v for k, v in outputs[0].scalars.items() if k.startswith("explained_variance")})
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=dict(outputs[0].attrs))


def eigenmap_memory(params: EigenmapParams) -> int:
    """Bytes the computed rectangle's per-point arrays need (about 16 float64 values a point)."""
    rows = (params.rows[1] - params.rows[0]) if params.rows else params.ynum
    cols = (params.cols[1] - params.cols[0]) if params.cols else params.xnum
    return 128 * rows * cols


EIGENMAP = AnalysisSpec(
    name="eigenmap",
    version=1,
    run=run_eigenmap,
    copies=lambda p, f: 19.0 + p.max_iter,
    params=EigenmapParams,
    inputs=(
        Slot("center", help="the checkpoint at the origin of the plane"),
        Slot("others", min=0, max=2, help="checkpoints spanning the plane (directions=checkpoints)"),
        Slot("trajectory", kind="trajectory", min=0, max=None,
             help="a run whose checkpoints give PCA directions (directions=pca)"),
    ),
    resources="any",
    tile=tile_eigenmap,
    merge=merge_eigenmap,
    memory=eigenmap_memory,
    description=(
        "Hessian λmax, λmin and |λmin/λmax| over the plane of a surface (Li et al. 2018, §7, Fig. 7), by "
        "warm-started Lanczos in snake order.\n\nArrays ((rows, cols) of the computed rectangle): lambda_max, "
        "lambda_min, ratio, loss, hvps, converged; x, y, row_index, col_index, direction_norms. Scalars: "
        "ratio_mean, ratio_median, ratio_max, convex_fraction, lambda_max_max, lambda_min_min, center_lambda_max, "
        "center_lambda_min, center_ratio, hvp_count, mean_hvps_per_point, unconverged, points."
    ),
)
