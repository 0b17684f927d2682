"""`plane`: loss and error on the plane through three checkpoints, with a curve drawn on it.

Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", Fig. 1 and
its footnote) show the loss on the plane through two trained networks and the bend of a curve
between them: with w1 the start, w2 the bend and w3 the end, u = w3 − w1 and
v = (w2 − w1) − ⟨w2 − w1, û⟩ û (Gram–Schmidt), a point (x, y) of the plane is w1 + x û + y v̂
with û = u/‖u‖, v̂ = v/‖v‖. Coordinates are therefore distances in parameter space; the start
sits at (0, 0), the end at (‖u‖, 0). A quadratic Bezier curve or a one-bend polygonal chain
through these three points lies in the plane, so it is drawn exactly: its points are the same
combinations of the three points' coordinates. The grid covers the three points (and the
curve) with a margin on each side, as in the authors' ``plane.py``. The bend may be any
checkpoint of the same schema, e.g. one that `curve` produced ("curve bend 1"). With
``align=weights|activations`` the bend and the end are first permuted to match the start
(Ainsworth et al. 2023, "Git Re-Basin"; `Context.aligned`), so the plane is drawn modulo
permutation symmetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape import evaluate_grid, grid_axis
from lsdb.landscape.curves import curve_coefficients
from lsdb.plugin import (
    ALIGNMENTS,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    accuracy_of,
    finite_scalars,
    single,
)
from lsdb_connectivity.curve import BN_CHOICES, resolve_bn, training_inputs

#: The bend's distance from the line through start and end must exceed this fraction of ‖end − start‖.
COLLINEAR_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PlaneParams:
    """Parameters of `plane`."""

    xnum: int = field(default=21, metadata={"help": "grid points along û (start → end)", "min": 2, "max": 2048})
    ynum: int = field(default=21, metadata={"help": "grid points along v̂ (towards the bend)", "min": 2, "max": 2048})
    margin: float = field(default=0.2, metadata={"help": "grid margin beyond the points, as a fraction of their "
                                                         "extent on each axis", "min": 0.0})
    curve: str = field(default="bezier", metadata={"help": "curve drawn through start, bend and end",
                                                   "choices": ("bezier", "polychain", "none")})
    curve_points: int = field(default=61, metadata={"help": "points of the drawn curve", "min": 2})
    splits: tuple[str, ...] = field(default=SPLITS, metadata={"help": "splits evaluated on the plane"})
    bn: str = field(default="auto", metadata={"help": "BatchNorm: recompute at every point, eval (the start's "
                                                      "statistics everywhere), or auto (recompute if present)",
                                              "choices": BN_CHOICES})
    align: str = field(default="none", metadata={
        "help": "permute the bend's and the end's hidden units to match the start's first: weights or activations "
                "matching (Ainsworth et al. 2023), or none", "choices": ALIGNMENTS, "key_omit_default": True})

    def __post_init__(self) -> None:
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def plane_basis(start: torch.Tensor, bend: torch.Tensor, end: torch.Tensor
                ) -> tuple[torch.Tensor, np.ndarray]:
    """(orthonormal directions (2, P) float64, coordinates (3, 2) of start, bend, end) — Garipov et al. 2018, Fig. 1.

    Raises `BadInput` when the bend is on the line through start and end (no plane).
    """
    w1, w2, w3 = (t.double() for t in (start, bend, end))
    u = w3 - w1
    dx = float(u.norm())
    if dx == 0.0:
        raise BadInput("plane: start and end are the same point; there is no plane through them")
    u_hat = u / dx
    along = w2 - w1
    bx = float(along @ u_hat)
    v = along - bx * u_hat
    dy = float(v.norm())
    if dy <= COLLINEAR_TOLERANCE * dx:
        raise BadInput("plane: the bend lies on the line between start and end; there is no plane through them")
    coords = np.array([[0.0, 0.0], [bx, dy], [dx, 0.0]])
    return torch.stack([u_hat, v / dy]), coords


def _axis(values: np.ndarray, margin: float, num: int) -> torch.Tensor:
    lo, hi = float(values.min()), float(values.max())
    extent = hi - lo
    return grid_axis(lo - margin * extent, hi + margin * extent, num)


def run_plane(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: PlaneParams) -> AnalysisOutput:
    """Loss and error on the plane through start, bend and end (Garipov et al. 2018, Fig. 1)."""
    start, bend, end = single(inputs, "start"), single(inputs, "bend"), single(inputs, "end")
    ctx.progress(0.0, "loading checkpoints")
    model = ctx.build_model(start.state())
    bn = resolve_bn(model, params.bn)
    if bn == "recompute":
        training_inputs(ctx, model, "plane")
    layout = ctx.layout(model)
    n = layout.n_params
    if params.align != "none":
        ctx.progress(0.0, f"{params.align} matching")
    points = torch.stack([ctx.point(layout, c, align=params.align, reference=start) for c in (start, bend, end)])
    dirs, coords = plane_basis(points[0, :n], points[1, :n], points[2, :n])

    drawn = np.zeros((0, 2))
    if params.curve != "none":
        ts = torch.linspace(0.0, 1.0, params.curve_points, dtype=torch.float64)
        drawn = (curve_coefficients(params.curve, ts, 3) @ torch.from_numpy(coords)).numpy()
    extent = np.concatenate([coords, drawn])
    xs = _axis(extent[:, 0], params.margin, params.xnum)
    ys = _axis(extent[:, 1], params.margin, params.ynum)

    arrays: dict[str, np.ndarray] = {"x": xs.numpy(), "y": ys.numpy(), "points_x": coords[:, 0],
                                     "points_y": coords[:, 1]}
    if len(drawn):
        arrays["curve_x"], arrays["curve_y"] = drawn[:, 0], drawn[:, 1]
    scalars: dict[str, float] = {"distance": float(coords[2, 0]), "bend_x": float(coords[1, 0]),
                                 "bend_y": float(coords[1, 1])}
    classification = ctx.loss == "cross_entropy"
    k = len(params.splits)
    for i, split in enumerate(params.splits):
        ev = ctx.evaluator(model, split, bn)
        at = ev.at_points(points[:, :n], should_cancel=ctx.should_cancel)
        grid = evaluate_grid(ev, dirs.to(ctx.device, ctx.dtype), xs, ys, points[0], should_cancel=ctx.should_cancel,
                             progress=ctx.span(i / k, (i + 1) / k, f"{split} split"))
        loss = grid.loss.double().numpy().T.copy()  # (nx, ny) -> matplotlib's (ny, nx)
        arrays[f"{split}_loss"] = loss
        scalars[f"{split}_loss_min"] = float(np.nanmin(loss))
        scalars[f"{split}_loss_max"] = float(np.nanmax(loss))
        if classification:
            error = 1.0 - accuracy_of(grid, tuple(grid.loss.shape)).T.copy()
            arrays[f"{split}_error"] = error
            scalars[f"{split}_error_min"] = float(np.nanmin(error))
        point_loss = at.loss.double().numpy()
        point_err = 1.0 - accuracy_of(at, point_loss.shape)
        for j, name in enumerate(("start", "bend", "end")):
            scalars[f"{name}_{split}_loss"] = float(point_loss[j])
            if classification:
                scalars[f"{name}_{split}_error"] = float(point_err[j])
    attrs = {"start": start.name, "bend": bend.name, "end": end.name, "bn": bn, "align": params.align}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


PLANE = AnalysisSpec(
    name="plane",
    version=1,
    run=run_plane,
    copies=lambda p, f: 28.0,
    params=PlaneParams,
    inputs=(
        Slot("start", help="w1, at (0, 0)"),
        Slot("end", help="w3, at (‖w3 − w1‖, 0)"),
        Slot("bend", help="w2, the third point, e.g. a curve's bend checkpoint"),
    ),
    resources="any",
    description=(
        "Loss and error on the plane through start, end and a bend, with the curve drawn on it "
        "(Garipov et al. 2018, Fig. 1).\n\nArrays: x, y, {split}_loss and {split}_error (ny, nx), points_x/points_y "
        "(start, bend, end), curve_x/curve_y. Scalars: distance, bend_x, bend_y, {split}_loss_min/max, "
        "{split}_error_min, {start,bend,end}_{split}_{loss,error}. align=weights|activations permutes bend and end to "
        "match the start first (Git Re-Basin)."
    ),
)
