"""`interpolate`: loss and accuracy along the straight line between two checkpoints.

θ(α) = (1 − α) θ_start + α θ_end, evaluated for α on a grid that may extend beyond [0, 1]:
the linear interpolation of Goodfellow, Vinyals & Saxe 2015 ("Qualitatively characterizing
neural network optimization problems", ICLR, §2), drawn as in Li et al. 2018 ("Visualizing
the Loss Landscape of Neural Nets", §3 and Fig. 2: loss and accuracy on twin axes, train
solid and test dashed). The loss barrier is the largest rise of the loss above the straight
line between the two end losses, as used to measure linear mode connectivity (Frankle et
al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis", §2, on the error).

With ``align=weights|activations`` the end's hidden units are first permuted to match the
start's (Ainsworth et al. 2023, "Git Re-Basin", Alg. 1 / §3.1; `Context.aligned`, which stores
the alignment once as an `align` result and reuses it), so the line is measured modulo
permutation symmetry; ``align=none`` (the default) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape import barrier
from lsdb.plugin import (
    ALIGNMENTS,
    BN_MODES,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    Context,
    InputCheckpoint,
    Slot,
    accuracy_of,
    finite_scalars,
    param_mask,
    single,
)

#: A grid value this close to 0 or 1 is snapped onto it; otherwise 0 and 1 are inserted.
SNAP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class InterpolateParams:
    """Parameters of `interpolate`."""

    alpha_min: float = field(default=-0.5, metadata={"help": "first α (θ(0) is the start, θ(1) the end)"})
    alpha_max: float = field(default=1.5, metadata={"help": "last α"})
    steps: int = field(default=41, metadata={"help": "evenly spaced α values (0 and 1 are always added)", "min": 2})
    splits: tuple[str, ...] = field(default=SPLITS, metadata={"help": "splits to evaluate: train, test or both"})
    bn: str = field(
        default="eval",
        metadata={
            "help": "BatchNorm: eval uses the running statistics, recompute re-estimates them at every α",
            "choices": BN_MODES,
        },
    )
    include_buffers: bool = field(
        default=True,
        metadata={"help": "interpolate floating buffers (BatchNorm running statistics) too; else keep the start's"},
    )
    align: str = field(
        default="none",
        metadata={"help": "permute the end's hidden units to match the start's first: weights or activations "
                          "matching (Ainsworth et al. 2023), or none", "choices": ALIGNMENTS},
    )
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); every other parameter stays at the start's "
                          "value (buffers too)"},
    )

    subset: int | None = field(
        default=None,
        metadata={"help": "evaluate on a fixed seeded random subset of this many examples per split (faster, noisier); "
                          "each α's loss then comes with its standard error ({split}_loss_se)", "min": 2,
                  "key_omit_default": True},
    )

    def __post_init__(self) -> None:
        if not self.alpha_min < self.alpha_max:
            raise ValueError(f"alpha_min ({self.alpha_min}) must be below alpha_max ({self.alpha_max})")
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def alpha_grid(alpha_min: float, alpha_max: float, steps: int) -> np.ndarray:
    """`steps` evenly spaced α in [alpha_min, alpha_max] (float64) that contain 0 and 1 exactly when in range.

    A value within `SNAP_TOLERANCE` of 0 or 1 is snapped onto it; when none is, the value is
    inserted, so the grid then holds up to two more points than `steps`.
    """
    alphas = np.linspace(alpha_min, alpha_max, steps, dtype=np.float64)
    for target in (0.0, 1.0):
        if not alpha_min <= target <= alpha_max:
            continue
        nearest = int(np.argmin(np.abs(alphas - target)))
        if abs(alphas[nearest] - target) <= SNAP_TOLERANCE:
            alphas[nearest] = target
        else:
            alphas = np.sort(np.append(alphas, target))
    return alphas


def run_interpolate(
    ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: InterpolateParams
) -> AnalysisOutput:
    """Evaluate θ(α) = θ_start + α (θ_end − θ_start) on every requested split (Goodfellow et al. 2015, §2)."""
    start, end = single(inputs, "start"), single(inputs, "end")
    ctx.progress(0.0, "loading checkpoints")
    model = ctx.build_model(start.state())
    layout = ctx.layout(model)
    theta0 = layout.flatten(model, dtype=ctx.dtype, device=ctx.device)
    if params.align != "none":
        ctx.progress(0.0, f"{params.align} matching")
    theta1 = ctx.point(layout, end, align=params.align, reference=start)
    width = layout.numel if params.include_buffers else layout.n_params
    if params.params:  # per-layer: only the selected parameters move; everything else stays at the start's
        width = layout.n_params
        mask = param_mask(layout, params.params, width, "interpolate").to(theta0.device)
    # in place, in the run's dtype: θ1 becomes the direction (no third parameter vector), and θ0 is freed
    # since every evaluator holds the same vector as its own θ0
    direction = theta1[:width].sub_(theta0[:width]).unsqueeze(0)
    if params.params:
        direction.mul_(mask)
    del theta0
    alphas = alpha_grid(params.alpha_min, params.alpha_max, params.steps)
    coefficients = torch.from_numpy(alphas).unsqueeze(1)
    classification = ctx.loss != "mse"

    arrays: dict[str, np.ndarray] = {"alpha": alphas}
    scalars: dict[str, float] = {}
    n = len(params.splits)
    for i, split in enumerate(params.splits):
        ev = ctx.evaluator(model, split, params.bn, params.subset)
        result = ev.along(
            direction,
            coefficients,
            should_cancel=ctx.should_cancel,
            progress=ctx.span(i / n, (i + 1) / n, f"{split} split"),
        )
        loss = result.loss.double().numpy()
        acc = accuracy_of(result, loss.shape)
        arrays[f"{split}_loss"], arrays[f"{split}_acc"] = loss, acc
        if result.stderr is not None:  # subset=N: standard error of each α's subset mean (with the FPC)
            arrays[f"{split}_loss_se"] = result.stderr.double().numpy()
        scalars.update(_split_scalars(split, alphas, loss, acc if classification else None))
        del ev, result  # one evaluator at a time
    ctx.progress(1.0, "done")
    attrs: dict[str, object] = {"start": start.name, "end": end.name, "n_points": int(len(alphas)),
                                "params": params.params}
    if params.subset is not None:
        attrs["subset"] = params.subset
    if params.align != "none":
        attrs["align"] = params.align
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


def _split_scalars(split: str, alphas: np.ndarray, loss: np.ndarray, acc: np.ndarray | None) -> dict[str, float]:
    """End-point values and barriers of one split; train's barrier is `loss_barrier`, test's `test_loss_barrier`."""
    prefix = "" if split == "train" else f"{split}_"
    out: dict[str, float] = {}
    for end, target in (("start", 0.0), ("end", 1.0)):
        hit = np.flatnonzero(alphas == target)
        if len(hit):
            out[f"{end}_{split}_loss"] = float(loss[hit[0]])
            if acc is not None:
                out[f"{end}_{split}_acc"] = float(acc[hit[0]])
    found = barrier(alphas, loss)
    if found is not None:
        out[f"{prefix}loss_barrier"], out[f"{prefix}barrier_alpha"] = found
    if acc is not None:
        found = barrier(alphas, 1.0 - acc)
        if found is not None:
            out[f"{prefix}error_barrier"] = found[0]
    out[f"min_{split}_loss"] = float(np.nanmin(loss)) if np.isfinite(loss).any() else float("nan")
    return out


INTERPOLATE = AnalysisSpec(
    name="interpolate",
    version=1,
    run=run_interpolate,
    copies=lambda p, f: 8.0,
    params=InterpolateParams,
    inputs=(
        Slot("start", help="the checkpoint at α = 0"),
        Slot("end", help="the checkpoint at α = 1 (same schema as start)"),
    ),
    resources="any",
    description=(
        "Loss and accuracy along the line θ(α) = (1−α)θ_start + αθ_end (Goodfellow et al. 2015; Li et al. 2018 "
        "Fig. 2).\n\nArrays: alpha, <split>_loss, <split>_acc (NaN for regression). Scalars: loss_barrier and "
        "test_loss_barrier (max over α in [0, 1] of the loss above the straight line between the end losses), "
        "error_barrier, barrier_alpha, start_/end_<split>_loss and _acc, min_<split>_loss. With bn=eval and "
        "include_buffers, BatchNorm running statistics are interpolated too (for α outside [0, 1] a running "
        "variance can turn negative; use bn=recompute for BatchNorm networks). align=weights|activations permutes "
        "the end to match the start first (Git Re-Basin, Ainsworth et al. 2023). subset=N evaluates a seeded "
        "subset of N examples per split and adds <split>_loss_se, each α's standard error."
    ),
)
