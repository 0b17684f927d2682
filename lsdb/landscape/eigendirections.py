"""Directions along the loss Hessian's extreme eigenvectors at a point.

A plane through θ spanned by the top two eigenvectors u1, u2 of H = ∇²L(θ) shows the two
most curved directions of the landscape; the plane through u_max and u_min shows the most
curved one against the one of most negative curvature (Li et al. 2018, §7, ask whether
2D plots hide such directions). The eigenvectors come from exact Hessian-vector products
(`hvp.HessianOperator`) and Lanczos with full reorthogonalization (`lanczos.lanczos`), started
from the gradient plus an equal share of a seeded random vector, as the ``hessian`` analysis
does. They are unit vectors over the parameters (``named_parameters()`` order, the parameter
part of `ParamLayout.from_module`), so plane coefficients are distances in parameter space,
with a deterministic sign (largest-magnitude entry positive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from lsdb.landscape.hvp import HessianOperator, Loss
from lsdb.landscape.lanczos import lanczos

Which = Literal["top", "extremes"]


@dataclass(frozen=True)
class EigenDirections:
    """Unit eigenvectors as rows (dims, n_params), their eigenvalues and error bounds (float64)."""

    vectors: Tensor
    eigenvalues: Tensor
    errors: Tensor
    hvps: int
    converged: bool


def hessian_eigendirections(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    dims: int = 2,
    which: Which = "top",
    loss: Loss = "cross_entropy",
    subset: int | None = None,
    seed: int = 0,
    tol: float = 1e-4,
    max_iter: int = 300,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> EigenDirections:
    """The eigenvectors of the `dims` largest eigenvalues (``which="top"``), or of the largest and
    then the smallest (``which="extremes"``, dims 1 or 2), of the mean-loss Hessian of `model` on
    (`x`, `y`) at its own parameters. BatchNorm uses its running statistics (eval mode)."""
    if dims < 1:
        raise ValueError(f"dims must be >= 1, got {dims}")
    if which not in ("top", "extremes"):
        raise ValueError(f"which must be 'top' or 'extremes', got {which!r}")
    if which == "extremes" and dims > 2:
        raise ValueError("which='extremes' gives at most two directions (largest and smallest eigenvalue)")
    op = HessianOperator(model, x, y, loss=loss, subset=subset, seed=seed, dtype=dtype, device=device)
    grad = op.gradient
    usable = grad is not None and bool(torch.isfinite(grad).all()) and float(grad.norm()) > 0
    top, bottom = (dims, 0) if which == "top" else (1, dims - 1)
    eig = lanczos(op.matvec, op.n, k=top, bottom=bottom, tol=tol, max_iter=max_iter,
                  start=grad if usable else None, start_noise=math.sqrt(0.5),
                  generator=generator if generator is not None else torch.Generator().manual_seed(seed),
                  dtype=op.dtype, device=op.device)
    if eig.iterations < top + bottom or eig.top_vectors is None or eig.bottom_vectors is None:
        raise ValueError(f"the Hessian has fewer than {dims} dimensions")
    vectors = torch.cat([eig.top_vectors, eig.bottom_vectors])
    values = torch.cat([eig.top, eig.bottom])
    errors = torch.cat([eig.top_errors, eig.bottom_errors])
    return EigenDirections(vectors, values, errors, op.hvp_count, eig.converged)
