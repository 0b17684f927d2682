"""`mconnector`: a low-loss simplex spanned by m optima (Fort & Jastrzebski 2019).

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§4.3, Fig. 4) generalize the tunnel between two optima to m of them: every point Σ_i w_i θ_i of
their convex hull (w on the simplex) is optimized within the subspace normal to the hull — the
orthogonal complement of span{θ_i − θ_1} — so that it keeps its place "over" the simplex while
its loss falls. The whole simplex then has low loss: the optima are joined by an (m − 1)-
dimensional low-loss manifold, as the wedge model predicts for m < n.

The hull is sampled on the grid w = a / resolution (a ∈ ℕ^m, Σ a = resolution); vertices are
the optima themselves and are not moved. Loss and error are evaluated at every grid point
before (the flat hull) and after the optimization. For m = 3 the renderer draws the paper's
triangle heat maps. The math is `lsdb.landscape.tunnels.connector`. With
``align=weights|activations`` every optimum after the first is first permuted to match the first
(Ainsworth et al. 2023, "Git Re-Basin"; `Context.aligned`), so the simplex is spanned modulo
permutation symmetry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape.tunnels import connector, simplex_grid
from lsdb.plugin import (
    ALIGNMENTS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    finite_scalars,
)
from lsdb_structure.tunnel import SPLITS, ModelLoss, evaluate_points, state_of

#: The most grid points one request may optimize (each costs `steps` gradient evaluations).
MAX_GRID_POINTS = 500


@dataclass(frozen=True)
class MConnectorParams:
    """Parameters of `mconnector`."""

    resolution: int = field(default=4, metadata={"help": "simplex grid: weights a/resolution with Σa = resolution",
                                                 "min": 1})
    steps: int = field(default=100, metadata={"help": "optimization steps per grid point", "min": 0})
    lr: float = field(default=0.05, metadata={"help": "learning rate of the projected SGD", "min": 0.0})
    momentum: float = field(default=0.9, metadata={"help": "momentum of the projected SGD", "min": 0.0})
    batch_size: int = field(default=256, metadata={"help": "minibatch size of the training loss (0: full batch)",
                                                   "min": 0})
    splits: tuple[str, ...] = field(default=SPLITS, metadata={"help": "splits to evaluate: train, test or both"})
    save_points: bool = field(default=False, metadata={"help": "store the optimized interior points as checkpoints"})
    align: str = field(default="none", metadata={
        "help": "permute every optimum's hidden units to match the first's first: weights or activations matching "
                "(Ainsworth et al. 2023), or none", "choices": ALIGNMENTS, "key_omit_default": True})

    def __post_init__(self) -> None:
        if self.momentum >= 1:
            raise ValueError(f"momentum must be below 1, got {self.momentum}")
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def run_mconnector(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                   params: MConnectorParams) -> AnalysisOutput:
    """Optimize the simplex grid of the inputs' hull normal to the hull, and evaluate it before and after."""
    optima = list(inputs.get("optima", ()))
    weights = simplex_grid(len(optima), params.resolution)
    if len(weights) > MAX_GRID_POINTS:
        raise BadInput(f"mconnector: {len(optima)} optima at resolution {params.resolution} make {len(weights)} grid "
                       f"points; at most {MAX_GRID_POINTS} (lower the resolution)")
    ctx.progress(0.0, "loading checkpoints")
    like = optima[0].state()
    model = ctx.build_model(like)
    layout = ctx.layout(model)
    if params.align != "none":
        ctx.progress(0.0, f"{params.align} matching")
    vertices = torch.stack([ctx.point(layout, c, align=params.align, reference=optima[0]) for c in optima])
    n_par = layout.n_params
    x, y = ctx.data("train")
    objective = ModelLoss(model, x, y, ctx.loss, params.batch_size, ctx.generator(1))

    def report(done: int, total: int) -> None:
        ctx.progress(0.8 * done / max(total, 1), "optimizing the hull's points")

    hull, optimized, history = connector(objective, vertices[:, :n_par], weights, params.steps, params.lr,
                                         params.momentum, report)
    if n_par < vertices.shape[1]:  # buffers: the same convex combination as the flat hull
        buffers = weights.to(vertices) @ vertices[:, n_par:]
        hull, optimized = (torch.cat([p, buffers], dim=1) for p in (hull, optimized))
    bn = "recompute" if objective.has_bn else "eval"
    on_hull = evaluate_points(ctx, model, hull, params.splits, bn, 0.8, 0.9)
    on_connector = evaluate_points(ctx, model, optimized, params.splits, bn, 0.9, 1.0)
    vertex = (weights == 1.0).any(dim=1).numpy()
    arrays: dict[str, np.ndarray] = {"weights": weights.numpy(), "vertex": vertex, "loss_history": history.numpy()}
    scalars: dict[str, float] = {"m": float(len(optima)), "n_points": float(len(weights))}
    for name, results in (("hull", on_hull), ("connector", on_connector)):
        for split, (loss, acc) in results.items():
            tag = "" if split == "train" else f"{split}_"
            arrays[f"{name}_{split}_loss"], arrays[f"{name}_{split}_err"] = loss, 1.0 - acc
            scalars[f"{name}_{tag}max_loss"] = float(np.nanmax(loss))
            scalars[f"{name}_{tag}mean_loss"] = float(np.nanmean(loss))
            if np.isfinite(acc).any():
                scalars[f"{name}_{tag}max_error"] = float(np.nanmax(1.0 - acc))
            if split == "train" or "train" not in results:
                scalars[f"{name}_{tag}loss_rise"] = float(np.nanmax(loss) - np.nanmax(loss[vertex]))
    checkpoints = []
    if params.save_points:
        for i in np.flatnonzero(~vertex):
            label = "connector point w=(" + ", ".join(f"{w:.3g}" for w in weights[i].tolist()) + ")"
            checkpoints.append(NewCheckpointOutput(state_of(layout, optimized[i], like), label=label))
    attrs = {"optima": [c.name for c in optima], "bn": bn, "align": params.align}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=checkpoints, attrs=attrs)


MCONNECTOR = AnalysisSpec(
    name="mconnector",
    version=1,
    run=run_mconnector,
    # the hull's grid, twice
    # the optima and the hull's grid points, before and after the optimization
    copies=lambda p, f: 18.0 + f.n_inputs + 2 * math.comb(p.resolution + f.n_inputs - 1, f.n_inputs - 1),
    params=MConnectorParams,
    inputs=(Slot("optima", min=2, max=None, help="m ≥ 2 optima (same architecture)"),),
    resources="any",
    description=(
        "The m-connector of Fort & Jastrzebski 2019 (§4.3, Fig. 4): the points of the convex hull of m optima, "
        "on a simplex grid, each optimized within the subspace normal to the hull.\n\nArrays: weights (G, m), "
        "vertex, hull_/connector_<split>_loss and _err, loss_history. Scalars: hull_/connector_max_loss, "
        "_mean_loss, _max_error, _loss_rise (grid maximum above the worst vertex; test_ variants), m, n_points. "
        "For m = 3 the default figure is the paper's triangle heat map. align=weights|activations permutes every "
        "optimum to match the first (Git Re-Basin)."
    ),
)
