"""Worst-case and average-case (adaptive) sharpness, after Andriushchenko et al. 2023.

Andriushchenko, Croce, Müller, Hein & Flammarion 2023, "A Modern Look at the Relationship
between Sharpness and Generalization" (ICML), §3, Eq. (1)–(2): for weights w, a loss L_S over a
fixed sample S of m examples, a radius ρ and an elementwise scale c,

    worst case    S_max(w) = max_{‖γ‖_p ≤ ρ} L_S(w + c ⊙ γ) − L_S(w)
    average case  S_avg(w) = E_γ L_S(w + c ⊙ γ) − L_S(w)

with c = |w| for **adaptive** sharpness (Kwon et al. 2021, "ASAM", ICML: invariant to the
rescalings w → T w, T diagonal and positive, that leave a network's function unchanged, such as
scaling a ReLU layer by a and the next by 1/a) and c = 1 otherwise, p ∈ {2, ∞}. Every parameter
is perturbed (buffers, e.g. BatchNorm statistics, are constants). The m examples are one fixed
sample (the paper's expectation over batches of size m is taken here over one batch).

**The ascent** (the paper uses Auto-PGD, Croce & Hein 2020; this is a simpler, documented
variant): projected normalized gradient ascent in γ with backtracking. Start at a random point
of the ball at half its radius (a random start also leaves a stationary point, where the
gradient vanishes); at γ with gradient g̃ = c ⊙ ∇L(w + c ⊙ γ), propose
γ' = Π(γ + η ρ ĝ) with ĝ = g̃/‖g̃‖₂ (p = 2) or sign(g̃) (p = ∞) and Π the projection on the ball
(rescaling to radius ρ, clipping to [−ρ, ρ]); accept γ' when its loss is higher, else halve η.
η starts at `step_size` (default 1: a step of the ball's radius). The reported value is the
best loss found (a lower bound of the maximum; more steps only raise it). A non-finite loss stops
the ascent at that step (``diverged_at``); the best finite point is kept.

**The average case**: γ = ρ z/‖z‖_p with z ~ N(0, I) — a Gaussian direction on the boundary of
the same ball — so each sample is a point the worst case maximizes over, and S_avg ≤ S_max for
the exact maximum. (The paper draws γ ~ N(0, ρ'² I); in high dimension ‖z‖₂ ≈ √P, so for p = 2
this is its ρ' = ρ/√P.) For a quadratic L = ½ δᵀ A δ at its minimum, S_avg = ρ² tr(C A C)/(2P)
for p = 2 and S_max = ρ² λ_max(C A C)/2, C = diag(c).

Losses are given as a function of the flat parameter vector: `model_objective` builds one
for a module (``named_parameters()`` order, the mean loss over the examples in batches);
`autograd_objective` wraps any differentiable function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

__all__ = [
    "AverageSharpness",
    "Objective",
    "WorstCaseSharpness",
    "autograd_objective",
    "average_case_sharpness",
    "model_objective",
    "perturbation_scale",
    "worst_case_sharpness",
]

Norm = Literal["l2", "linf"]


@dataclass(frozen=True)
class Objective:
    """A loss of the flat parameters: ``value(θ) -> float`` and ``value_and_grad(θ) -> (float, ∇)``."""

    value: Callable[[Tensor], float]
    value_and_grad: Callable[[Tensor], tuple[float, Tensor]]


def autograd_objective(fn: Callable[[Tensor], Tensor]) -> Objective:
    """An `Objective` from a differentiable scalar function of the flat parameters."""

    def value(theta: Tensor) -> float:
        with torch.no_grad():
            return float(fn(theta))

    def value_and_grad(theta: Tensor) -> tuple[float, Tensor]:
        leaf = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = fn(leaf)
            (g,) = torch.autograd.grad(out, leaf)
        return float(out.detach()), g.detach()

    return Objective(value, value_and_grad)


def model_objective(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy",
                    batch_size: int | None = None) -> tuple[Objective, Tensor]:
    """(the mean loss of `model` on (x, y) as a function of its flat parameters, θ₀ = its parameters).

    The module is used as it is (put it in eval mode: dropout off, BatchNorm on its running
    statistics); buffers are constants. ``cross_entropy`` is the mean −log softmax(z)_y,
    ``mse`` the mean over all output elements. `batch_size` bounds the examples per pass.
    """
    if loss not in ("cross_entropy", "mse"):
        raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must hold the same, non-zero number of examples ({len(x)}, {len(y)})")
    named = [(n, p) for n, p in model.named_parameters()]
    if not named:
        raise ValueError("the model has no parameters")
    names, shapes = [n for n, _ in named], [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    buffers = dict(model.named_buffers())
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])
    step = batch_size or len(x)
    if step < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = len(x)

    def batch_loss(theta: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes, strict=True)}
        out = functional_call(model, {**params, **buffers}, (xb,))
        if loss == "cross_entropy":
            return F.cross_entropy(out, yb, reduction="sum")
        target = yb.reshape(out.shape) if yb.numel() == out.numel() else yb
        return F.mse_loss(out, target, reduction="sum") / out[0].numel()

    def value(theta: Tensor) -> float:
        with torch.no_grad():
            return sum(float(batch_loss(theta, x[i:i + step], y[i:i + step])) for i in range(0, total, step)) / total

    def value_and_grad(theta: Tensor) -> tuple[float, Tensor]:
        leaf = theta.detach().clone().requires_grad_(True)
        acc, grad = 0.0, torch.zeros_like(leaf)
        for i in range(0, total, step):
            with torch.enable_grad():
                v = batch_loss(leaf, x[i:i + step], y[i:i + step])
                (g,) = torch.autograd.grad(v, leaf)
            acc += float(v.detach())
            grad += g
        return acc / total, grad / total

    return Objective(value, value_and_grad), theta0


def perturbation_scale(theta: Tensor, adaptive: bool) -> Tensor:
    """c: |θ| elementwise for adaptive sharpness, else ones."""
    return theta.detach().abs() if adaptive else torch.ones_like(theta)


def _check(rho: float, norm: str) -> None:
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"rho must be a finite number > 0, got {rho}")
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")


def _norm(v: Tensor, norm: str) -> float:
    return float(v.norm(p=2) if norm == "l2" else v.abs().max())


def _project(gamma: Tensor, rho: float, norm: str) -> Tensor:
    if norm == "linf":
        return gamma.clamp(-rho, rho)
    n = float(gamma.norm())
    return gamma * (rho / n) if n > rho else gamma


def _on_ball(z: Tensor, rho: float, norm: str) -> Tensor:
    n = _norm(z, norm)
    return z * (rho / n) if n > 0 else z


@dataclass(frozen=True)
class WorstCaseSharpness:
    """The result of `worst_case_sharpness`."""

    value: float  # L(θ + c ⊙ γ*) − L(θ)
    loss_before: float
    loss_after: float
    perturbation_norm: float  # ‖γ*‖_p (≤ ρ)
    perturbation_l2: float  # ‖c ⊙ γ*‖₂, the weights' actual displacement
    curve: np.ndarray  # the best loss after each step (index 0: the start)
    proposed: np.ndarray  # the loss of each step's proposal (index 0: the start)
    steps: int  # steps taken
    diverged_at: int | None  # the step whose loss was not finite (the ascent stopped there)
    delta: Tensor  # c ⊙ γ*


def worst_case_sharpness(
    objective: Objective,
    theta: Tensor,
    *,
    rho: float,
    norm: Norm = "l2",
    adaptive: bool = True,
    steps: int = 20,
    step_size: float = 1.0,
    generator: torch.Generator | None = None,
    loss_before: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> WorstCaseSharpness:
    """Worst-case (adaptive) sharpness at θ by the projected ascent of the module docstring."""
    _check(rho, norm)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    theta = theta.detach()
    c = perturbation_scale(theta, adaptive)
    base = objective.value(theta) if loss_before is None else loss_before
    if not math.isfinite(base):
        raise ValueError(f"the loss at the checkpoint is not finite ({base})")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    z = torch.randn(theta.shape, generator=gen, dtype=torch.float64).to(theta.device, theta.dtype)
    if norm == "linf":
        z = torch.rand(theta.shape, generator=gen, dtype=torch.float64).to(theta.device, theta.dtype) * 2 - 1
    gamma = _on_ball(z, rho / 2, norm)
    best, grad = objective.value_and_grad(theta + c * gamma)
    curve, proposed = [best], [best]
    diverged: int | None = None
    if not math.isfinite(best):  # even the start diverged: fall back to θ itself
        diverged, best, gamma, grad = 0, base, torch.zeros_like(theta), torch.zeros_like(theta)
        curve = [base]
    eta = step_size
    taken = 0
    for t in range(1, steps + 1):
        if diverged is not None:
            break
        g = c * grad
        if float(g.abs().max()) == 0.0:
            break  # a stationary point of the perturbed loss: nowhere to go
        direction = g / g.norm() if norm == "l2" else g.sign()
        candidate = _project(gamma + eta * rho * direction, rho, norm)
        value, cand_grad = objective.value_and_grad(theta + c * candidate)
        taken = t
        proposed.append(value)
        if not math.isfinite(value):
            diverged = t
            curve.append(best)
            break
        if value > best:
            best, gamma, grad = value, candidate, cand_grad
        else:
            eta /= 2
        curve.append(best)
        if progress is not None:
            progress(t)
    delta = c * gamma
    return WorstCaseSharpness(value=best - base, loss_before=base, loss_after=best,
                              perturbation_norm=_norm(gamma, norm), perturbation_l2=float(delta.norm()),
                              curve=np.asarray(curve, dtype=np.float64),
                              proposed=np.asarray(proposed, dtype=np.float64), steps=taken, diverged_at=diverged,
                              delta=delta)


@dataclass(frozen=True)
class AverageSharpness:
    """The result of `average_case_sharpness`."""

    value: float  # mean of L(θ + c ⊙ γ_k) − L(θ) over the finite samples
    stderr: float
    loss_before: float
    samples: np.ndarray  # L(θ + c ⊙ γ_k) − L(θ), k = 1..n (NaN where not finite)
    non_finite: int


def average_case_sharpness(
    objective: Objective,
    theta: Tensor,
    *,
    rho: float,
    norm: Norm = "l2",
    adaptive: bool = True,
    samples: int = 20,
    generator: torch.Generator | None = None,
    loss_before: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> AverageSharpness:
    """Average-case (adaptive) sharpness at θ over Gaussian directions on the ball's boundary."""
    _check(rho, norm)
    if samples < 2:
        raise ValueError(f"samples must be >= 2 (a standard error needs two), got {samples}")
    theta = theta.detach()
    c = perturbation_scale(theta, adaptive)
    base = objective.value(theta) if loss_before is None else loss_before
    if not math.isfinite(base):
        raise ValueError(f"the loss at the checkpoint is not finite ({base})")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    out = []
    for k in range(samples):
        z = torch.randn(theta.shape, generator=gen, dtype=torch.float64).to(theta.device, theta.dtype)
        v = objective.value(theta + c * _on_ball(z, rho, norm)) - base
        out.append(v if math.isfinite(v) else math.nan)
        if progress is not None:
            progress(k + 1)
    arr = np.asarray(out, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    mean = float(finite.mean()) if finite.size else math.nan
    err = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else math.nan
    return AverageSharpness(value=mean, stderr=err, loss_before=base, samples=arr,
                            non_finite=int(arr.size - finite.size))
