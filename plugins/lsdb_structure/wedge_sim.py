"""`wedge-sim`: the wedge toy landscape of Fort & Jastrzebski 2019 and its three experiments.

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§3) explain the large-scale structure of loss landscapes with a toy model: in D dimensions the
low-loss set is a union of wedges, each short in n directions, and the loss is the distance to
the nearest wedge, sqrt(Σ of the n smallest x_i²) (`lsdb.landscape.wedges`). Three experiments
(`experiment`) reproduce the paper's observations on the toy model alone:

1. optimization on random affine d-dimensional subspaces: the final loss against d drops to
   zero at d = n (§3.1, Fig. 2);
2. a tunnel between two optima on different wedges by the `tunnel` algorithm, whose deviations
   from the straight line form two clusters (§4.3, Fig. 3);
3. radial probing from a point of a wedge: the loss rises at almost the same distance along
   every random direction (§4.2, Fig. 5).

It needs no checkpoints and no data; everything it computes is stored as the result's arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape.tunnels import two_block_split
from lsdb.landscape.wedges import hyperplane_experiment, radial_experiment, tunnel_experiment
from lsdb.plugin import AnalysisOutput, AnalysisSpec, Context, InputCheckpoint, finite_scalars

#: Experiment 1 counts a final loss below this as reaching the wedge.
ZERO_LOSS = 1e-6


@dataclass(frozen=True)
class WedgeSimParams:
    """Parameters of `wedge-sim`."""

    experiment: int = field(default=1, metadata={
        "help": "1: random-subspace optimization; 2: tunnel between wedges; 3: radial probing", "choices": (1, 2, 3)})
    dim: int = field(default=100, metadata={"help": "D, the dimension of the space", "min": 2})
    n: int = field(default=10, metadata={"help": "short directions of every wedge", "min": 1})
    dims: tuple[int, ...] = field(default=(), metadata={
        "help": "experiment 1: subspace dimensions d to try (default 1 .. 2n)", "min": 1})
    trials: int = field(default=5, metadata={"help": "experiment 1: random subspaces per d", "min": 1})
    steps: int = field(default=100, metadata={
        "help": "optimization steps (experiment 1: per subspace; experiment 2: per knot)", "min": 0})
    method: str = field(default="newton", metadata={
        "help": "experiment 1: newton (exact per wedge) or gd (gradient descent, lr)", "choices": ("newton", "gd")})
    lr: float = field(default=0.5, metadata={"help": "learning rate (experiment 1 gd, experiment 2)", "min": 0.0})
    pieces: int = field(default=10, metadata={"help": "experiment 2: K pieces of the segment", "min": 2})
    path_steps: int = field(default=0, metadata={"help": "experiment 2: whole-path steps after the knots", "min": 0})
    directions: int = field(default=50, metadata={"help": "experiment 3: random directions", "min": 1})
    threshold: float = field(default=0.25, metadata={
        "help": "experiment 3: loss threshold τ (well below the other coordinates' margin of 1)", "min": 0.0})
    offset: float = field(default=0.0, metadata={"help": "experiment 3: distance of the centre from the wedge",
                                                 "min": 0.0})

    def __post_init__(self) -> None:
        if self.n > self.dim:
            raise ValueError(f"n ({self.n}) must not exceed dim ({self.dim})")
        if self.experiment == 2 and 2 * self.n > self.dim:
            raise ValueError(f"experiment 2 needs two disjoint wedges: dim >= 2n, got dim={self.dim}, n={self.n}")
        if any(d > self.dim for d in self.dims):
            raise ValueError(f"subspace dimensions must not exceed dim ({self.dim})")


def run_wedge_sim(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: WedgeSimParams) -> AnalysisOutput:
    """Run one of the three toy-model experiments with the request's seed."""
    ctx.progress(0.0, f"experiment {params.experiment}")
    runner = {1: _subspaces, 2: _tunnel, 3: _radial}[params.experiment]
    arrays, scalars = runner(ctx.seed, params)
    scalars.update({"dim": float(params.dim), "n": float(params.n), "experiment": float(params.experiment)})
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs={"experiment": params.experiment})


def _subspaces(seed: int, p: WedgeSimParams) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    dims = list(p.dims) or list(range(1, min(2 * p.n, p.dim) + 1))
    run = hyperplane_experiment(p.dim, p.n, dims, p.trials, p.steps, seed, method=p.method, lr=p.lr)
    final = run.final_loss.numpy()
    reached = (final < ZERO_LOSS).all(axis=1)
    arrays = {"dims": np.asarray(dims), "final_loss": final, "mean_final_loss": final.mean(axis=1),
              "loss_curves": run.curves.numpy()}
    # threshold_dim is NaN (and so absent from the stored scalars) when no dimension tried reached zero
    # loss in every trial (e.g. method=gd with too few steps); threshold_reached says which it was
    scalars = {"threshold_dim": float(dims[int(np.argmax(reached))]) if reached.any() else float("nan"),
               "threshold_reached": float(reached.any())}
    for d, label in ((p.n - 1, "below_n"), (p.n, "at_n")):
        if d in dims:
            scalars[f"mean_final_loss_{label}"] = float(final[dims.index(d)].mean())
    return arrays, scalars


def _tunnel(seed: int, p: WedgeSimParams) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    found = tunnel_experiment(p.dim, p.n, p.pieces, p.steps, p.lr, seed, path_steps=p.path_steps)
    split_at, contrast = two_block_split(found.cosines)
    t = found.path.t
    arrays = {
        "t": found.t.numpy(),
        "path_loss": found.path_loss.numpy(),
        "line_loss": found.line_loss.numpy(),
        "knot_t": t.numpy(),
        "knots": found.path.knots.numpy(),
        "line": found.path.line.numpy(),
        "deviation_cosine": found.cosines.numpy(),
        "knot_wedge": found.knot_wedge.numpy(),
        "knot_start_share": found.knot_start_share.numpy(),
    }
    scalars = {
        "path_max_loss": float(found.path_loss.max()),
        "line_max_loss": float(found.line_loss.max()),
        "deviation_contrast": contrast,
        "knots_on_start_wedge": float((found.knot_wedge == 0).sum()),
        "knots_on_end_wedge": float((found.knot_wedge == 1).sum()),
    }
    if split_at:
        scalars["deviation_split_t"] = float(t[split_at] + t[split_at + 1]) / 2
    return arrays, scalars


def _radial(seed: int, p: WedgeSimParams) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    predicted = p.threshold * math.sqrt(p.dim / p.n)  # L(r u) ≈ r ‖u_S‖ and E ‖u_S‖² = n / D
    found = radial_experiment(p.dim, p.n, p.directions, p.threshold, 3.0 * predicted + p.offset, seed,
                              offset=p.offset)
    widths = found.widths
    arrays = {"widths": widths.numpy(), "radii": found.radii.numpy(), "profiles": found.profiles.numpy(),
              "censored": found.censored.numpy()}
    mean, std = float(widths.mean()), float(widths.std()) if len(widths) > 1 else 0.0
    scalars = {"width_mean": mean, "width_std": std, "width_cv": std / mean if mean > 0 else float("nan"),
               "predicted_width": predicted, "center_loss": found.center_loss,
               "n_censored": float(torch.as_tensor(found.censored).sum())}
    return arrays, scalars


WEDGE_SIM = AnalysisSpec(
    name="wedge-sim",
    version=1,
    run=run_wedge_sim,
    params=WedgeSimParams,
    inputs=(),
    needs_data=False,
    resources="cpu",
    description=(
        "The wedge toy model of Fort & Jastrzebski 2019 (§3): loss = distance to the nearest of the wedges "
        "{x_S = 0}, |S| = n, in D dimensions. experiment=1: optimization on random d-dimensional affine subspaces "
        "(arrays dims, final_loss (d, trials), mean_final_loss, loss_curves; scalars threshold_dim, the smallest d "
        "reaching zero loss in every trial (expected: n), and threshold_reached, 1 or 0; when no d reached it "
        "(e.g. method=gd with too few steps) threshold_reached is 0 and threshold_dim is absent); "
        "2: the tunnel between two wedges (t, path_loss, line_loss, knots, line, "
        "deviation_cosine, knot_wedge, knot_start_share; path_max_loss, line_max_loss, deviation_contrast); "
        "3: radial probing from a wedge (widths, radii, profiles; width_mean, width_std, width_cv, "
        "predicted_width). No inputs."
    ),
)
