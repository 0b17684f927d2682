"""`hessian`: the curvature of the loss at one checkpoint: extreme eigenpairs, trace and spectral density.

H = ∇²L(θ) of the mean loss over a split (or a fixed seeded subset), with respect to the
model's parameters, used only through exact Hessian-vector products (`lsdb.landscape.hvp`):

* the top-k eigenvalues and eigenvectors and the smallest (most negative) eigenvalue, by
  Lanczos (1950) with full reorthogonalization in one Krylov space (`lsdb.landscape.lanczos`),
  stopped when every wanted value is within `tol` relative (the smallest relative to the
  spectral radius) by the Ritz error bounds. These bound the error of exact arithmetic only
  (they reach 1e-50); the reported errors add an estimate of the rounding of the float32
  products (`rounding_error`): `eigenvalue_errors` and `max_rel_error` are Ritz bound +
  rounding, `ritz_errors` and `max_rel_ritz_residual` the Ritz bounds alone;
* the trace, by Hutchinson's estimator with Rademacher probes, stopped on its standard error,
  which is reported (`trace_stderr`);
* optionally the eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019;
  PyHessian, Yao et al. 2020), a Gaussian-broadened density on a grid that integrates to 1.

Lanczos starts, by default, from the normalized gradient plus an equal share of a random vector:
the gradient concentrates in the top eigenspace during training (Gur-Ari, Roberts & Dyer 2018,
"Gradient Descent Happens in a Tiny Subspace"), which saves iterations, and the random share
keeps every direction reachable. BatchNorm is in eval mode (its running statistics are
constants) unless ``bn=batch``. Eigenvectors are stored as rows in the parameter layout
(`ParamLayout.from_module(model)`'s parameter part, the ``named_parameters()`` order), unit
norm, sign fixed so that the largest-magnitude entry is positive. With ``eigen_checkpoints=J``
the points θ + s·u_j (j ≤ J) are also stored as checkpoints, so that ``surface`` with
``directions=checkpoints`` draws the loss along the top eigenvectors; ``surface`` with
``directions=hessian`` computes them itself (the same Lanczos, on the surface's split).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape.hvp import DEFAULT_MEMORY_BUDGET as HVP_PASS_BUDGET
from lsdb.landscape.hvp import HessianOperator
from lsdb.landscape.lanczos import lanczos
from lsdb.landscape.spectrum import hutchinson_trace, spectral_density
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    finite_scalars,
    param_mask,
    single,
)

BN_MODES = ("eval", "batch")
HVP_METHODS = ("reverse", "forward")
STARTS = ("gradient", "random")
#: Share of the random vector in a gradient start: equal weight to the normalized gradient.
GRADIENT_START_NOISE = math.sqrt(0.5)


def compute_dtype(ctx: Context) -> torch.dtype:
    """float64 when asked for, else float32: half-precision Hessian products are too coarse for Lanczos."""
    return torch.float64 if ctx.dtype == torch.float64 else torch.float32


def hessian_operator(ctx: Context, model: nn.Module, split: str, subset: int | None, bn: str,
                     batch_size: int | None, method: str) -> HessianOperator:
    """The Hessian of the run's loss on a split of the context's data, at the model's point."""
    x, y = ctx.data(split)
    return HessianOperator(model, x, y, loss=ctx.loss, subset=subset, seed=ctx.seed, batch_size=batch_size,
                           dtype=compute_dtype(ctx), device=ctx.device, method=method, bn=bn,  # type: ignore[arg-type]
                           memory_budget=ctx.memory_budget(HVP_PASS_BUDGET))


def stage(ctx: Context, start: float, stop: float, total: int, message: str) -> Callable[[int], None]:
    """A progress callback for ``done`` of `total` units, mapped onto ``start .. stop`` of the run."""

    def report(done: int) -> None:
        ctx.progress(start + (stop - start) * min(done / max(total, 1), 1.0), message)

    return report


def ratio(lambda_min: float, lambda_max: float) -> float:
    """|λmin/λmax| (Li et al. 2018, §7): near 0 where the surface is convex, large where it is not."""
    return abs(lambda_min / lambda_max) if lambda_max != 0 else math.nan


@dataclass(frozen=True)
class HessianParams:
    """Parameters of `hessian`."""

    k: int = field(default=3, metadata={"help": "number of top eigenvalues (and eigenvectors)", "min": 1})
    tol: float = field(
        default=1e-4,
        metadata={"help": "Lanczos tolerance: relative error bound of each eigenvalue (λmin: relative to λmax)",
                  "min": 0.0},
    )
    max_iter: int = field(default=200, metadata={"help": "at most this many Lanczos steps (Hessian products)",
                                                 "min": 2})
    start: str = field(default="gradient", metadata={"help": "Lanczos start: gradient (+ random) or random",
                                                     "choices": STARTS})
    split: str = field(default="train", metadata={"help": "split the loss is taken over", "choices": SPLITS})
    subset: int | None = field(default=None, metadata={"help": "use a fixed random subset of this many examples",
                                                       "min": 1})
    batch_size: int | None = field(default=None, metadata={"help": "examples per pass (default: memory permitting)",
                                                           "min": 1})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval (running statistics) or batch",
                                              "choices": BN_MODES})
    method: str = field(default="reverse", metadata={"help": "Hessian products: reverse (double backward, graph "
                                                             "kept) or forward (forward-over-reverse)",
                                                     "choices": HVP_METHODS})
    trace: bool = field(default=True, metadata={"help": "estimate the trace (Hutchinson)"})
    trace_probes: int = field(default=100, metadata={"help": "at most this many Rademacher probes", "min": 2})
    trace_tol: float = field(default=0.02, metadata={"help": "stop once the trace's standard error is below this "
                                                             "fraction of it", "min": 0.0})
    density: bool = field(default=False, metadata={"help": "estimate the eigenvalue density (SLQ)"})
    density_bins: int = field(default=1000, metadata={"help": "grid points of the density", "min": 2})
    density_sigma: float = field(default=0.01, metadata={"help": "Gaussian width, as a fraction of the spectrum's "
                                                                 "range", "min": 0.0})
    slq_runs: int = field(default=3, metadata={"help": "SLQ random starting vectors", "min": 1})
    slq_steps: int = field(default=80, metadata={"help": "Lanczos steps per SLQ run", "min": 2})
    save_eigenvectors: bool = field(default=True, metadata={"help": "store eigenvectors (k, P) and min_eigenvector"})
    eigen_checkpoints: int = field(default=0, metadata={"help": "store θ + eigen_scale·u_j for the top j <= this "
                                                                "as checkpoints (for surface)", "min": 0})
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); the Hessian is the block of the selected "
                          "parameters (a per-layer or per-block spectrum)"},
    )
    eigen_scale: float = field(default=1.0, metadata={"help": "distance of those checkpoints from θ", "min": 0.0})

    def __post_init__(self) -> None:
        if self.eigen_checkpoints > self.k:
            raise ValueError(f"eigen_checkpoints ({self.eigen_checkpoints}) cannot exceed k ({self.k})")
        if self.density_sigma <= 0:
            raise ValueError("density_sigma must be > 0")


def eigen_checkpoint(state: dict[str, Tensor], model: nn.Module, vector: Tensor, scale: float) -> dict[str, Tensor]:
    """The checkpoint's state with its parameters moved by ``scale · vector`` (buffers unchanged)."""
    out = {k: v.clone() for k, v in state.items()}
    offset = 0
    for name, p in model.named_parameters():
        step = vector[offset:offset + p.numel()].view(p.shape)
        out[name] = (out[name].to(torch.float64) + scale * step.to("cpu", torch.float64)).to(state[name].dtype)
        offset += p.numel()
    return out


def rounding_error(matvec: Callable[[Tensor], Tensor], vectors: Tensor | None, spread: float,
                   dtype: torch.dtype) -> float:
    """An estimate of how far rounding in the Hessian-vector products moves the eigenvalues (absolute).

    The Ritz bounds assume exact products; a float32 product H̃v = Hv + Ev is off by rounding, and
    every eigenvalue of H̃ is within ‖E‖ of one of H (Weyl). ‖Ev‖ is measured on the top Ritz
    vector y by computing one product twice in ways equal in exact arithmetic, H(3y)/3 and H(y),
    whose roundings differ: twice their distance, and at least ρ·eps(dtype) (ρ the spectral radius
    found: the rounding of the result itself). Two extra products. An estimate, not a proof; tested
    against float64 references (tests/curvature/test_hessian_analysis.py).
    """
    floor = spread * torch.finfo(dtype).eps
    if vectors is None or len(vectors) == 0:
        return 2 * floor
    y = vectors[0]
    once = matvec(y)
    thrice = matvec(3.0 * y) / 3.0
    return 2 * max(float(torch.linalg.vector_norm((thrice - once).double())), floor)


class Restricted:
    """The Hessian block of the selected parameters, H_SS, as an operator on R^|S| (`idx` their flat indices):
    eigenvalues, trace and density are those of the block, eigenvectors are embedded back with `expand`."""

    def __init__(self, op: HessianOperator, idx: Tensor) -> None:
        self.op, self.idx, self.n = op, idx, int(len(idx))
        self.dtype, self.device, self.batched = op.dtype, op.device, op.batched
        self.gradient = op.gradient[idx] if op.gradient is not None else None
        self.loss, self.n_examples = op.loss, op.n_examples

    @property
    def hvp_count(self) -> int:
        return int(self.op.hvp_count)

    def expand(self, vectors: Tensor) -> Tensor:
        full = vectors.new_zeros(vectors.shape[0], self.op.n)
        full[:, self.idx.to(vectors.device)] = vectors
        return full

    def matvec(self, v: Tensor) -> Tensor:
        return self.op.matvec(self.expand(v.unsqueeze(0))[0])[self.idx]

    def matmat(self, vectors: Tensor) -> Tensor:
        return self.op.matmat(self.expand(vectors))[:, self.idx]


def gradient_start(op: HessianOperator | Restricted) -> Tensor | None:
    """The gradient as a Lanczos start (`GRADIENT_START_NOISE` is mixed in), or None where it is missing,
    non-finite or zero (then Lanczos starts from a random vector)."""
    grad = op.gradient
    usable = grad is not None and bool(torch.isfinite(grad).all()) and float(grad.norm()) > 0
    return grad if usable else None


def run_hessian(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: HessianParams) -> AnalysisOutput:
    """Extreme eigenpairs, trace and density of the loss Hessian at one checkpoint (see the module docstring)."""
    center = single(inputs, "center")
    state = center.state()
    model = ctx.build_model(state)
    ctx.progress(0.0, "gradient")
    mask = param_mask(ctx.layout(model), params.params, ctx.layout(model).n_params, "hessian") if params.params \
        else None  # a selection that matches nothing is refused before any work
    full_op = hessian_operator(ctx, model, params.split, params.subset, params.bn, params.batch_size, params.method)
    op: HessianOperator | Restricted = full_op
    if mask is not None:
        op = Restricted(full_op, mask.nonzero().squeeze(1).to(full_op.device))
    grad = gradient_start(op) if params.start == "gradient" else None
    top_stop = 0.6 if params.trace or params.density else 0.98
    eig = lanczos(
        op.matvec, op.n, k=params.k, bottom=1, tol=params.tol, max_iter=params.max_iter,
        start=grad, start_noise=GRADIENT_START_NOISE, generator=ctx.generator(0),
        dtype=op.dtype, device=op.device, vectors=True,
        progress=stage(ctx, 0.02, top_stop, params.max_iter, "Lanczos"),
    )
    lanczos_hvps = op.hvp_count
    rounding = rounding_error(op.matvec, eig.top_vectors, float(eig.ritz_values.abs().max()), op.dtype)
    ritz_errors = eig.top_errors
    errors = ritz_errors + rounding
    top = eig.top.tolist()
    lam_max, lam_min = top[0], float(eig.bottom[0])
    scalars: dict[str, float] = {"lambda_max": lam_max}
    scalars.update({f"lambda_{i + 1}": v for i, v in enumerate(top) if i > 0})
    scalars.update({
        "lambda_min": lam_min,
        "min_max_ratio": ratio(lam_min, lam_max),
        "lanczos_iterations": float(eig.iterations),
        "lanczos_hvps": float(lanczos_hvps),
        "converged": float(eig.converged),
        "max_rel_error": max(e / max(abs(v), 1e-300) for e, v in zip(errors.tolist(), top, strict=True)),
        "max_rel_ritz_residual": max(e / max(abs(v), 1e-300) for e, v in zip(ritz_errors.tolist(), top, strict=True)),
        "rounding_error": rounding,
        "lambda_min_error": float(eig.bottom_errors[0]) + rounding,
        "loss": op.loss,
        "grad_norm": float(op.gradient.norm()) if op.gradient is not None else math.nan,
        "n_examples": float(op.n_examples),
    })
    arrays: dict[str, np.ndarray | Tensor] = {
        "eigenvalues": eig.top.numpy(),
        "eigenvalue_errors": errors.numpy(),
        "ritz_errors": ritz_errors.numpy(),
        "ritz_values": eig.ritz_values.numpy(),
    }
    if params.save_eigenvectors and eig.top_vectors is not None and eig.bottom_vectors is not None:
        top_vectors = op.expand(eig.top_vectors) if isinstance(op, Restricted) else eig.top_vectors
        arrays["eigenvectors"] = top_vectors.cpu()
        bottom = eig.bottom_vectors[:1]
        arrays["min_eigenvector"] = (op.expand(bottom) if isinstance(op, Restricted) else bottom)[0].cpu()
    if params.trace:
        stop = 0.8 if params.density else 0.98
        tr = hutchinson_trace(op.matmat, op.n, tol=params.trace_tol, max_probes=params.trace_probes,
                              block=8 if op.batched else 1, generator=ctx.generator(1), dtype=op.dtype,
                              device=op.device, progress=stage(ctx, top_stop, stop, params.trace_probes, "trace"))
        scalars.update({"trace": tr.value, "trace_stderr": tr.stderr, "trace_probes": float(tr.probes)})
        arrays["trace_samples"] = tr.samples.numpy()
    if params.density:
        ctx.progress(0.8 if params.trace else top_stop, "spectral density")
        dens = spectral_density(op.matmat, op.n, runs=params.slq_runs, steps=params.slq_steps,
                                bins=params.density_bins, sigma=params.density_sigma, generator=ctx.generator(2),
                                dtype=op.dtype, device=op.device)
        arrays.update({"density_grid": dens.grid.numpy(), "density": dens.density.numpy(),
                       "slq_nodes": dens.nodes.numpy(), "slq_weights": dens.weights.numpy()})
        scalars.update({"slq_trace": dens.trace(op.n), "density_sigma_abs": dens.sigma})
    scalars["hvp_count"] = float(op.hvp_count)
    checkpoints = []
    if params.eigen_checkpoints and eig.top_vectors is not None:
        for j in range(params.eigen_checkpoints):
            vector = op.expand(eig.top_vectors[j:j + 1])[0] if isinstance(op, Restricted) else eig.top_vectors[j]
            moved = eigen_checkpoint(state, model, vector, params.eigen_scale)
            checkpoints.append(NewCheckpointOutput(moved, label=f"hessian eigenvector {j + 1} of {center.name} "
                                                                f"(λ={top[j]:.4g}, scale {params.eigen_scale:g})"))
    attrs = {
        "center": center.name,
        "n_params": int(op.n),
        "params": params.params,
        "parameter_names": list(full_op.names),
        "parameter_shapes": [list(s) for s in full_op.shapes],
        "layout": "parameters in named_parameters() order (ParamLayout.from_module(model), parameter part)",
        "dtype": str(op.dtype).replace("torch.", ""),
        "bn": params.bn,
    }
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=checkpoints, attrs=attrs)


HESSIAN = AnalysisSpec(
    name="hessian",
    version=1,
    run=run_hessian,
    copies=lambda p, f: 15.0 + p.max_iter + (p.slq_steps if p.density else 0),  # Krylov basis: max_iter rows
    params=HessianParams,
    inputs=(Slot("center", help="the checkpoint whose loss Hessian is analysed"),),
    resources="any",
    description=(
        "Curvature at a checkpoint: top-k and most negative Hessian eigenvalues (Lanczos), trace (Hutchinson) "
        "and eigenvalue density (SLQ; Ghorbani et al. 2019), from exact Hessian-vector products.\n\n"
        "Arrays: eigenvalues, eigenvalue_errors (Ritz bound + rounding estimate), ritz_errors (the Ritz bounds "
        "alone, exact arithmetic), ritz_values, eigenvectors (k, P) and min_eigenvector (P) "
        "(save_eigenvectors), trace_samples, density_grid, density, slq_nodes, slq_weights (density). "
        "Scalars: lambda_max, lambda_2.., lambda_min, min_max_ratio (|λmin/λmax|), trace, trace_stderr, "
        "trace_probes, hvp_count, lanczos_hvps, lanczos_iterations, converged, max_rel_error (largest "
        "eigenvalue_errors relative), max_rel_ritz_residual, rounding_error, lambda_min_error, loss, grad_norm, "
        "n_examples, slq_trace."
    ),
)
