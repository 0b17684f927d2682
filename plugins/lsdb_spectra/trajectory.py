"""`weight-spectrum-trajectory`: `weight-spectrum` along a run's checkpoints, alpha per layer vs step.

The same per-layer spectra as `weight-spectrum` (the same parameters and math), computed for
every checkpoint of a trajectory in step order, stored as (checkpoints × layers) arrays so that
alpha, the norms and the ranks can be followed over training (WeightWatcher users' "alpha over
training" and early stopping on alpha, which weightwatcher itself cannot store or compare).

No fan-out: lsdb's ``tile(params, tile_size)`` sees only the parameters, not how many
checkpoints the trajectory holds, so it cannot split the run into tiles; and the work per
checkpoint is one batched eigensolve of its weights. To spread a long run over workers, submit
`weight-spectrum` for each checkpoint (each result is cached and comparable on its own).

Scalars: ``mean_alpha_first``, ``mean_alpha_last``, ``mean_alpha_min`` and ``step_of_min_mean_alpha``
(the step where the mean alpha over fitted layers is smallest), ``mean_log_norm_last``,
``num_checkpoints``, ``num_layers``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsdb.landscape.weight_spectra import EVALS_THRESH, MIN_FIT_EVALS
from lsdb.plugin import AnalysisOutput, AnalysisSpec, BadInput, Context, InputCheckpoint, Slot, by_step, finite_scalars
from lsdb_spectra.weight_spectrum import LAYER_METRICS, layer_table, spectra_of, summary

#: Summary scalars of each checkpoint, stored as one array each (length: checkpoints).
PER_CHECKPOINT = ("mean_alpha", "mean_alpha_weighted", "mean_log_norm", "mean_log_spectral_norm", "mean_stable_rank",
                  "mean_mp_softrank", "num_spikes", "num_fitted")


@dataclass(frozen=True)
class TrajectoryParams:
    """Parameters of `weight-spectrum-trajectory` (those of `weight-spectrum`; no traps by default)."""

    params: str = field(default="", metadata={"help": "comma-separated globs of the weight names to analyse"})
    exclude: str = field(default="", metadata={"help": "comma-separated globs of weight names to leave out"})
    normalize: bool = field(default=False, metadata={"help": "eigenvalues of WᵀW/N instead of WᵀW"})
    conv2d_norm: bool = field(default=True, metadata={"help": "scale convolution slices by √(1/2) (weightwatcher)"})
    min_evals: int = field(default=MIN_FIT_EVALS, metadata={"help": "fewer eigenvalues above thresh: no power-law "
                                                                    "fit for the layer", "min": 2})
    min_size: int = field(default=8, metadata={"help": "skip layers with fewer eigenvalues (M·rf) than this",
                                               "min": 1})
    thresh: float = field(default=EVALS_THRESH, metadata={"help": "eigenvalues at or below this are not fitted",
                                                          "min": 0.0})
    randomize: bool = field(default=False, metadata={"help": "also count correlation traps at every checkpoint"})


def run_trajectory(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                   params: TrajectoryParams) -> AnalysisOutput:
    """Per-layer spectra at every checkpoint of the trajectory (see the module docstring)."""
    checkpoints = by_step(inputs.get("trajectory", []))
    if not checkpoints:
        raise BadInput("the trajectory has no checkpoints")
    tables: list[dict[str, np.ndarray]] = []
    sums: list[dict[str, float]] = []
    layers: list[str] | None = None
    status: list[list[str]] = []
    for i, ckpt in enumerate(checkpoints):
        ctx.progress(i / len(checkpoints), f"checkpoint {i + 1}/{len(checkpoints)}")
        spectra = spectra_of(ctx, ckpt, params, offset=i)
        names = [s.name for s in spectra]
        if layers is None:
            layers = names
        elif names != layers:
            raise BadInput(f"{ckpt.name} selects other layers than {checkpoints[0].name}")
        tables.append(layer_table(spectra))
        sums.append(summary(spectra))
        status.append([s.status for s in spectra])
    steps = np.array([c.step if c.step is not None else i for i, c in enumerate(checkpoints)], dtype=np.int64)
    arrays: dict[str, Any] = {"steps": steps}
    for k in (*LAYER_METRICS, "fitted"):
        arrays[k] = np.stack([t[k] for t in tables])
    for k in PER_CHECKPOINT:
        arrays[k] = np.array([s.get(k, math.nan) for s in sums], dtype=np.float64)
    mean_alpha = arrays["mean_alpha"]
    scalars: dict[str, float] = {"num_checkpoints": float(len(checkpoints)), "num_layers": float(len(layers or []))}
    if np.isfinite(mean_alpha).any():
        best = int(np.nanargmin(mean_alpha))
        scalars.update(mean_alpha_first=float(mean_alpha[0]), mean_alpha_last=float(mean_alpha[-1]),
                       mean_alpha_min=float(mean_alpha[best]), step_of_min_mean_alpha=float(steps[best]))
    scalars["mean_log_norm_last"] = float(arrays["mean_log_norm"][-1])
    attrs = {"run": checkpoints[0].run, "layers": layers or [], "checkpoints": [c.name for c in checkpoints],
             "status": status}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


WEIGHT_SPECTRUM_TRAJECTORY = AnalysisSpec(
    name="weight-spectrum-trajectory",
    version=1,
    run=run_trajectory,
    copies=lambda p, f: 10.0,  # one checkpoint at a time
    params=TrajectoryParams,
    inputs=(Slot("trajectory", kind="trajectory", min=1, max=None, help="a run: all its checkpoints by step"),),
    resources="any",
    needs_data=False,
    description=(
        "weight-spectrum at every checkpoint of a run: alpha (and the norms and ranks) per layer vs step.\n\n"
        "Arrays: steps (T); alpha, alpha_weighted, log_norm, log_spectral_norm, log_alpha_norm, stable_rank, "
        "mp_softrank, num_spikes, num_traps, xmin, D, sigma, ... and fitted, each (T, layers); mean_alpha, "
        "mean_log_norm, ... (T). Scalars: mean_alpha_first, mean_alpha_last, mean_alpha_min, "
        "step_of_min_mean_alpha, mean_log_norm_last, num_checkpoints, num_layers."
    ),
)
