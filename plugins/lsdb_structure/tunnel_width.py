"""`tunnel-width`: the radial width of the low-loss tunnel around a checkpoint (Fort & Jastrzebski 2019).

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§4.2, Fig. 5–7) walk away from an optimum along random directions and find that the loss
rises at almost the same distance in every direction: the optimum lies in a tunnel of a
well-defined radial width, which is larger for a higher learning rate, a smaller batch, more
L2 regularization or more dropout (up to a point). This analysis measures, along R random
directions u, the first distance r at which the loss exceeds a threshold τ
(`lsdb.landscape.radial.radial_widths`: a scan of the loss profile, then bisection).

Directions are unit Gaussian vectors (``norm=none``: r is a Euclidean distance, as in the
paper) or filter-normalized ones (``norm=filter``, Li et al. 2018, §4: every filter of u has the
norm of the same filter of θ, so r is a distance relative to the weights' scale and comparable
across networks whose weights have different norms). τ is absolute, a rise above the centre's
loss, or a multiple of it (``threshold_mode``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape import normalize_direction, random_direction
from lsdb.landscape.radial import POINTS_BYTES, radial_widths
from lsdb.plugin import (
    AnalysisOutput,
    AnalysisSpec,
    Context,
    Footprint,
    InputCheckpoint,
    Slot,
    finite_scalars,
    param_mask,
    single,
)

NORMS = ("none", "filter")
THRESHOLD_MODES = ("rise", "absolute", "ratio")


@dataclass(frozen=True)
class TunnelWidthParams:
    """Parameters of `tunnel-width`."""

    directions: int = field(default=20, metadata={"help": "R: random directions to probe", "min": 1})
    norm: str = field(default="none", metadata={
        "help": "none: unit directions (Euclidean distance, the paper); filter: filter-normalized (Li et al. 2018)",
        "choices": NORMS})
    threshold: float = field(default=1.0, metadata={"help": "τ, read according to threshold_mode", "min": 0.0})
    threshold_mode: str = field(default="rise", metadata={
        "help": "absolute: L > τ; rise: L > L(centre) + τ; ratio: L > τ · L(centre)", "choices": THRESHOLD_MODES})
    max_radius: float = field(default=20.0, metadata={"help": "largest distance probed (wider is censored)",
                                                      "min": 0.0})
    grid: int = field(default=20, metadata={"help": "radii scanned in (0, max_radius] (the loss profile)", "min": 1})
    iters: int = field(default=12, metadata={"help": "bisection steps after the scan", "min": 0})
    split: str = field(default="train", metadata={"help": "split whose loss is probed", "choices": ("train", "test")})
    subset: int = field(default=0, metadata={"help": "evaluate on this many random examples (0: all)", "min": 0})
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); directions are zero outside the selected "
                          "parameters (every other parameter stays at the centre's value)", "key_omit_default": True},
    )

    def __post_init__(self) -> None:
        if not self.max_radius > 0:
            raise ValueError(f"max_radius must be > 0, got {self.max_radius}")


def threshold_value(mode: str, threshold: float, center_loss: float) -> float:
    """τ as an absolute loss: as given, the centre's loss plus it, or the centre's loss times it."""
    if mode == "absolute":
        return threshold
    if mode == "rise":
        return center_loss + threshold
    return center_loss * threshold


def run_tunnel_width(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                     params: TunnelWidthParams) -> AnalysisOutput:
    """Probe the checkpoint along R random directions and measure where the loss first exceeds τ."""
    center_ckpt = single(inputs, "center")
    ctx.progress(0.0, "loading the checkpoint")
    model = ctx.build_model(center_ckpt.state())
    layout = ctx.layout(model)
    theta = ctx.point(layout, center_ckpt)
    mask = param_mask(layout, params.params, len(theta), "tunnel-width").to(theta.device) if params.params else None
    gen = ctx.generator(0)
    rows = []
    for _ in range(params.directions):
        d = random_direction(layout, generator=gen, dtype=ctx.dtype, device=ctx.device)
        if mask is not None:  # per-layer: the direction lives in the selected parameters only
            d = d * mask
        if params.norm == "filter":
            d = normalize_direction(d, theta, layout, "filter", "ignore")
        else:
            d = d / torch.linalg.vector_norm(d)
        rows.append(d)
    directions = torch.stack(rows)
    ev = ctx.evaluator(model, params.split, "eval", subset=params.subset or None)
    evaluated = [0]
    expected = params.directions * (params.grid + params.iters) + 1

    def batch_loss(points: torch.Tensor) -> torch.Tensor:
        result = ev.at_points(points, should_cancel=ctx.should_cancel)
        evaluated[0] += len(points)
        ctx.progress(min(evaluated[0] / expected, 0.99), "probing")
        return result.loss

    center_loss = float(batch_loss(theta.unsqueeze(0))[0])
    tau = threshold_value(params.threshold_mode, params.threshold, center_loss)
    found = radial_widths(batch_loss, theta, directions, tau, params.max_radius, params.grid, params.iters,
                          center_loss=center_loss)
    widths = found.widths.numpy()
    arrays = {
        "widths": widths,
        "censored": found.censored.numpy(),
        "radii": found.radii.numpy(),
        "profiles": found.profiles.numpy(),
        "direction_norms": torch.linalg.vector_norm(directions, dim=1, dtype=torch.float64).cpu().numpy(),
    }
    mean = float(widths.mean())
    std = float(widths.std(ddof=1)) if len(widths) > 1 else 0.0
    scalars = {
        "width_mean": mean,
        "width_std": std,
        "width_cv": std / mean if mean > 0 else float("nan"),
        "width_min": float(widths.min()),
        "width_max": float(widths.max()),
        "width_median": float(np.median(widths)),
        "n_censored": float(found.censored.sum()),
        "center_loss": center_loss,
        "threshold": tau,
    }
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs={"center": center_ckpt.name,
                                                                                "params": params.params})


def tunnel_width_copies(params: TunnelWidthParams, footprint: Footprint) -> float:
    """Parameter copies at the peak: the model and its evaluator, the R directions, and one call's
    points (`POINTS_BYTES` of them at most)."""
    points = params.directions * (params.grid + 1)
    per_call = max(1, POINTS_BYTES // max(1, footprint.param_bytes))
    return 12.0 + params.directions + 2 * min(points, per_call)  # the points, and the evaluator's copy of them


TUNNEL_WIDTH = AnalysisSpec(
    name="tunnel-width",
    version=1,
    run=run_tunnel_width,
    copies=tunnel_width_copies,
    params=TunnelWidthParams,
    inputs=(Slot("center", help="the checkpoint (an optimum) to probe around"),),
    resources="any",
    description=(
        "The radial tunnel width (Fort & Jastrzebski 2019, §4.2): along R random unit (or filter-normalized) "
        "directions, the distance at which the loss first exceeds a threshold (absolute, or relative to the "
        "centre).\n\nArrays: widths, censored (never crossed within max_radius: width = max_radius, a lower "
        "bound), radii, profiles (R, grid) of the loss scan, direction_norms. Scalars: width_mean, width_std, "
        "width_cv, width_min, width_max, width_median, n_censored, center_loss, threshold (τ as a loss)."
    ),
)
