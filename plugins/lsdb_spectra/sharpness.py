"""`sharpness`: worst-case and average-case (adaptive) sharpness at one checkpoint, with Hessian cross-references.

Andriushchenko et al. 2023 ("A Modern Look at the Relationship between Sharpness and
Generalization", ICML), on a fixed seeded subset of ``m`` examples of a split:

* ``worst_case`` = max_{‖γ‖_p ≤ ρ} L(w + c ⊙ γ) − L(w), by projected normalized gradient ascent
  with backtracking from a random start (``steps`` gradient evaluations; the paper uses
  Auto-PGD), with the ascent curve, the loss before and after and the perturbation's norms;
* ``average_case`` = E L(w + c ⊙ γ) − L(w) over Gaussian directions γ on the same ball's
  boundary (``samples`` draws; its standard error is reported);

c = |w| elementwise when ``adaptive`` (Kwon et al. 2021; invariant to function-preserving layer
rescalings), else 1; p = 2 or ∞ (``norm``). The math, and how the average case relates to the
paper's N(0, ρ'²) draws, is in `lsdb.landscape.adaptive_sharpness`.

Cross-references on the same examples (``hessian=true``): ``lambda_max`` by Lanczos and
``hessian_trace`` (± ``hessian_trace_stderr``) by Hutchinson, from the exact Hessian-vector
products of `lsdb.landscape.hvp` — the same estimators as the `hessian` analysis, which gives
the same numbers for ``-p subset=M`` with the same seed (its `subset` draws the same examples).
An ascent whose loss stops being finite stops there: ``diverged_at`` is that step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape.adaptive_sharpness import average_case_sharpness, model_objective, worst_case_sharpness
from lsdb.landscape.hvp import DEFAULT_MEMORY_BUDGET, HessianOperator, subset_indices
from lsdb.landscape.lanczos import lanczos
from lsdb.landscape.spectrum import hutchinson_trace
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    finite_scalars,
    single,
)

NORMS = ("l2", "linf")


@dataclass(frozen=True)
class SharpnessParams:
    """Parameters of `sharpness`."""

    rho: float = field(default=0.1, metadata={"help": "radius of the ball of γ = δ/c (relative to |w| when "
                                                      "adaptive)", "min": 0.0})
    norm: str = field(default="l2", metadata={"help": "the ball's norm", "choices": NORMS})
    adaptive: bool = field(default=True, metadata={"help": "scale the perturbation elementwise by |w| (Kwon et al. "
                                                           "2021)"})
    m: int = field(default=256, metadata={"help": "examples (a fixed seeded subset of the split)", "min": 1})
    split: str = field(default="train", metadata={"help": "split the examples come from", "choices": SPLITS})
    steps: int = field(default=20, metadata={"help": "ascent steps (gradient evaluations) of the worst case",
                                              "min": 1})
    step_size: float = field(default=1.0, metadata={"help": "first ascent step, as a fraction of rho (halved on "
                                                            "every step that does not raise the loss)", "min": 0.0})
    samples: int = field(default=20, metadata={"help": "random directions of the average case", "min": 2})
    worst: bool = field(default=True, metadata={"help": "compute the worst case"})
    average: bool = field(default=True, metadata={"help": "compute the average case"})
    batch_size: int | None = field(default=None, metadata={"help": "examples per pass (default: all m)", "min": 1})
    hessian: bool = field(default=True, metadata={"help": "also λmax (Lanczos) and the trace (Hutchinson) of the "
                                                          "loss Hessian on the same examples"})
    hessian_tol: float = field(default=1e-3, metadata={"help": "Lanczos relative tolerance of λmax", "min": 0.0})
    hessian_iters: int = field(default=100, metadata={"help": "at most this many Lanczos steps", "min": 2})
    trace_probes: int = field(default=50, metadata={"help": "at most this many Hutchinson probes", "min": 2})
    trace_tol: float = field(default=0.05, metadata={"help": "stop the trace once its standard error is below this "
                                                             "fraction of it", "min": 0.0})

    def __post_init__(self) -> None:
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0, got {self.rho}")
        if not self.step_size > 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size}")
        if not (self.worst or self.average):
            raise ValueError("nothing to compute: worst=false and average=false")


def run_sharpness(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: SharpnessParams) -> AnalysisOutput:
    """Worst- and average-case sharpness at one checkpoint (see the module docstring)."""
    center = single(inputs, "center")
    model = ctx.build_model(center.state())
    x, y = ctx.data(params.split)
    idx = subset_indices(len(x), params.m, ctx.seed)
    if idx is not None:
        x, y = x[idx.to(x.device)], y[idx.to(y.device)]
    try:
        objective, theta = model_objective(model, x, y, loss=ctx.loss, batch_size=params.batch_size)
    except ValueError as exc:
        raise BadInput(f"{center.name}: {exc}") from None
    before = objective.value(theta)
    if not math.isfinite(before):
        raise BadInput(f"{center.name}: the loss at the checkpoint is not finite ({before})")
    scalars: dict[str, float] = {"loss_before": before, "n_examples": float(len(x)), "n_params": float(theta.numel())}
    arrays: dict[str, np.ndarray | torch.Tensor] = {}
    attrs: dict[str, object] = {"center": center.name, "split": params.split,
                                "ascent": "projected normalized gradient ascent with backtracking, random start"}
    stop = 0.7 if params.hessian else 0.98
    if params.worst:
        ctx.progress(0.0, "ascent")
        wc = worst_case_sharpness(
            objective, theta, rho=params.rho, norm=params.norm, adaptive=params.adaptive,  # type: ignore[arg-type]
            steps=params.steps, step_size=params.step_size, generator=ctx.generator(0), loss_before=before,
            progress=lambda t: ctx.progress(stop * 0.8 * t / params.steps, "ascent"),
        )
        scalars.update(worst_case=wc.value, loss_after=wc.loss_after, perturbation_norm=wc.perturbation_norm,
                       perturbation_l2=wc.perturbation_l2, ascent_steps=float(wc.steps))
        arrays.update(ascent_curve=wc.curve, ascent_proposed=wc.proposed)
        if wc.diverged_at is not None:
            scalars["diverged_at"] = float(wc.diverged_at)
            attrs["status"] = f"the ascent diverged (non-finite loss) at step {wc.diverged_at}; best finite point kept"
    if params.average:
        ctx.progress(stop * 0.8, "average case")
        av = average_case_sharpness(
            objective, theta, rho=params.rho, norm=params.norm, adaptive=params.adaptive,  # type: ignore[arg-type]
            samples=params.samples, generator=ctx.generator(1), loss_before=before,
        )
        scalars.update(average_case=av.value, average_case_stderr=av.stderr, average_non_finite=float(av.non_finite))
        arrays["average_samples"] = av.samples
    if params.hessian:
        ctx.progress(stop, "Hessian")
        dtype = torch.float64 if ctx.dtype == torch.float64 else torch.float32
        op = HessianOperator(model, x, y, loss=ctx.loss, dtype=dtype, device=ctx.device,  # type: ignore[arg-type]
                             batch_size=params.batch_size, memory_budget=ctx.memory_budget(DEFAULT_MEMORY_BUDGET))
        eig = lanczos(op.matvec, op.n, k=1, tol=params.hessian_tol, max_iter=params.hessian_iters,
                      start=op.gradient, start_noise=math.sqrt(0.5), generator=ctx.generator(2), dtype=op.dtype,
                      device=op.device, vectors=False)
        tr = hutchinson_trace(op.matmat, op.n, tol=params.trace_tol, max_probes=params.trace_probes,
                              generator=ctx.generator(3), dtype=op.dtype, device=op.device)
        scalars.update(lambda_max=float(eig.top[0]), lambda_max_converged=float(eig.converged),
                       hessian_trace=tr.value, hessian_trace_stderr=tr.stderr)
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


SHARPNESS = AnalysisSpec(
    name="sharpness",
    version=1,
    run=run_sharpness,
    copies=lambda p, f: 20.0 + (p.hessian_iters if p.hessian else 0),
    params=SharpnessParams,
    inputs=(Slot("center", help="the checkpoint whose sharpness is measured"),),
    resources="any",
    description=(
        "Worst-case and average-case (adaptive) sharpness in an L2 or L∞ ball (Andriushchenko et al. 2023), on a "
        "seeded subset of m examples, with the Hessian's λmax and trace on the same examples.\n\n"
        "Arrays: ascent_curve (best loss per step), ascent_proposed, average_samples. Scalars: worst_case, "
        "average_case, average_case_stderr, loss_before, loss_after, perturbation_norm (‖γ‖_p), perturbation_l2 "
        "(‖δ‖₂), ascent_steps, diverged_at (only when it diverged), lambda_max, hessian_trace, "
        "hessian_trace_stderr, n_examples, n_params."
    ),
)
