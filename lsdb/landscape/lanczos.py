"""Extreme eigenpairs of a symmetric operator known only through products, by the Lanczos method.

Lanczos (1950, "An iteration method for the solution of the eigenvalue problem of linear
differential and integral operators", J. Res. Nat. Bur. Standards 45) builds an orthonormal
basis Q_m of the Krylov space span{q, Hq, ..., H^{m-1}q} in which H is the tridiagonal
T_m = Q_mᵀ H Q_m; the eigenvalues of T_m (Ritz values) approach the extreme eigenvalues of H
after far fewer products than power iteration needs (Saad 2011, "Numerical Methods for Large
Eigenvalue Problems", §6.6). Every new vector is reorthogonalized against the whole basis
(classical Gram–Schmidt, twice), so no spurious copies of converged values appear and the
basis stays orthonormal to working precision (Parlett 1998, "The Symmetric Eigenvalue
Problem", §13.1).

Convergence: a Ritz pair (θ_i, y_i) has residual ‖H y_i − θ_i y_i‖ = β_m |s_{m,i}|, which is free.
The error of θ_i is bounded by the residual r_i and, once the neighbouring Ritz values are
known to be separated from it, by r_i² / gap_i (Parlett 1998, Thm 11.7.1; Kato–Temple), with
gap_i = min_j (|θ_i − θ_j| − r_j) over its neighbours. The `lanczos` stopping rule uses
``min(r_i, r_i²/gap_i)`` (just r_i when the gap is not yet resolved): a wanted top value is
converged when this is at most ``tol · |θ_i|``; a wanted bottom value when it is at most
``tol · max(|θ_i|, ρ)``, ρ being the largest Ritz magnitude (the most negative Hessian
eigenvalue can lie arbitrarily close to zero, so it is resolved relative to the spectrum).

Warm starts: `start` may hold eigenvectors of a nearby operator (the neighbouring grid point of
an eigenmap); the starting vector is their normalized sum plus a `start_noise` share of a random
vector, which keeps every direction of the space reachable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]
MatMat = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LanczosResult:
    """Extreme Ritz values and vectors. Values and error bounds are float64 on the CPU.

    `top` descends from the largest; `bottom` ascends from the smallest. `ritz_values` holds
    every Ritz value of the final T_m (ascending). Vectors are rows in the operator's dtype.
    """

    top: Tensor
    bottom: Tensor
    top_errors: Tensor
    bottom_errors: Tensor
    top_vectors: Tensor | None
    bottom_vectors: Tensor | None
    ritz_values: Tensor
    iterations: int
    matvecs: int
    converged: bool
    basis: Tensor | None = None
    ritz_coefficients: Tensor | None = None

    def ritz_vectors(self, top: int = 0, bottom: int = 0) -> Tensor:
        """The Ritz vectors of the `top` largest then the `bottom` smallest Ritz values, converged or not
        (e.g. to warm-start a nearby problem); needs ``keep_basis=True``."""
        if self.basis is None or self.ritz_coefficients is None:
            raise ValueError("the Lanczos basis was not kept (keep_basis=False)")
        m = len(self.ritz_values)
        idx = torch.cat([torch.arange(m - 1, m - 1 - min(top, m), -1), torch.arange(min(bottom, m))])
        coef = self.ritz_coefficients[:, idx].T.to(self.basis)
        return _fix_signs(coef @ self.basis)


def random_unit(n: int, generator: torch.Generator | None, dtype: torch.dtype,
                device: torch.device | str | None) -> Tensor:
    """A Gaussian vector of unit norm, drawn on the CPU (the same numbers on every device)."""
    v = torch.randn(n, generator=generator, dtype=dtype)
    return (v / torch.linalg.vector_norm(v)).to(device)


def start_vector(n: int, start: Tensor | None, noise: float, generator: torch.Generator | None,
                 dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    """q_1: random, or the normalized sum of `start`'s rows with a `noise` share of a random vector."""
    rand = random_unit(n, generator, dtype, device)
    if start is None:
        return rand
    rows = start.reshape(-1, n).to(device=device, dtype=dtype)
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    warm = (rows / torch.where(norms > 0, norms, 1)).sum(0)
    size = torch.linalg.vector_norm(warm)
    if not size > 0:
        return rand
    v = math.sqrt(max(1.0 - noise**2, 0.0)) * warm / size + noise * rand
    return v / torch.linalg.vector_norm(v)


def _orthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """w minus its components along the rows of `basis` (classical Gram–Schmidt, twice)."""
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
    return w


def _tridiagonal(alpha: list[float], beta: list[float]) -> Tensor:
    t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if beta:
        off = torch.tensor(beta, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


def ritz_error_bounds(theta: Tensor, residuals: Tensor) -> Tensor:
    """min(r_i, r_i²/gap_i) with gap_i = min over neighbours j of |θ_i − θ_j| − r_j (r_i if unresolved).

    The residual r_i bounds the distance from θ_i to the nearest eigenvalue rigorously; r_i²/gap_i
    does once gap_i bounds that eigenvalue's distance to the rest of the spectrum, which Ritz
    values estimate from within (the usual practice, Parlett 1998, §11.7).

    `theta` ascending (float64), `residuals` the matching β_m |s_{m,i}|. Parlett 1998, Thm 11.7.1.
    """
    m = len(theta)
    gaps = torch.full((m,), math.inf, dtype=torch.float64)
    if m > 1:
        below = (theta[1:] - theta[:-1]) - residuals[:-1]  # gap of i to i-1, for i >= 1
        above = (theta[1:] - theta[:-1]) - residuals[1:]   # gap of i to i+1, for i < m-1
        gaps[1:] = torch.minimum(gaps[1:], below)
        gaps[:-1] = torch.minimum(gaps[:-1], above)
    resolved = (gaps > residuals) & torch.isfinite(gaps)  # a lone Ritz value has no known gap
    quad = residuals**2 / torch.where(resolved, gaps, 1.0)
    return torch.where(resolved, torch.minimum(residuals, quad), residuals)


def lanczos(
    matvec: MatVec,
    n: int,
    *,
    k: int = 1,
    bottom: int = 0,
    tol: float = 1e-4,
    max_iter: int = 100,
    start: Tensor | None = None,
    start_noise: float = 0.1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    vectors: bool = True,
    min_iter: int = 0,
    keep_basis: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LanczosResult:
    """The `k` largest and `bottom` smallest eigenpairs of the symmetric operator `matvec` on R^n.

    Lanczos with full reorthogonalization (see the module docstring for the stopping rule),
    at most `max_iter` products (and never more than n). `start`: warm-start vectors, one or
    a (m, n) stack; `start_noise`: the share of a random vector mixed into them. `generator`
    draws the random vectors (on the CPU). `min_iter`: never stop before this many products (a
    warm start otherwise risks stopping on the neighbour's eigenvalue before a new extreme one has
    emerged). `keep_basis` keeps Q_m in the result (for `LanczosResult.ritz_vectors`).
    `progress(iteration)` is called after every product (it may raise to stop). An invariant
    subspace found before n products is continued from a fresh random vector orthogonal to the basis.
    """
    if k < 0 or bottom < 0 or k + bottom < 1:
        raise ValueError(f"ask for at least one eigenvalue (k={k}, bottom={bottom})")
    if n < 1:
        raise ValueError("the operator has no dimensions")
    steps = min(max_iter, n)
    wanted = min(k + bottom, n)
    basis = torch.empty(min(steps, 16), n, dtype=dtype, device=device)  # grows by doubling: memory follows use
    basis[0] = start_vector(n, start, start_noise, generator, dtype, device)
    alpha: list[float] = []
    beta: list[float] = []
    theta = errors = s = torch.zeros(0, dtype=torch.float64)
    converged = False
    for j in range(steps):
        w = matvec(basis[j]).to(device=device, dtype=dtype)
        alpha.append(float(torch.dot(w, basis[j])))
        w = _orthogonalize(w, basis[: j + 1])
        b = float(torch.linalg.vector_norm(w))
        theta, s = torch.linalg.eigh(_tridiagonal(alpha, beta))
        residuals = b * s[-1].abs()
        scale = float(theta.abs().max())
        if j + 1 == n:
            residuals = torch.zeros_like(residuals)
        errors = ritz_error_bounds(theta, residuals)
        if progress is not None:
            progress(j + 1)
        if j + 1 >= min(max(wanted + 1, min_iter), n):
            converged = _converged(theta, errors, k, bottom, tol, scale)
        if converged or j + 1 == steps:
            break
        if j + 1 == len(basis):
            basis = torch.cat([basis, torch.empty(min(len(basis), steps - len(basis)), n, dtype=dtype, device=device)])
        if b <= 1e-10 * max(scale, 1e-300) or b == 0.0:  # invariant subspace: continue from a fresh direction
            w = _orthogonalize(random_unit(n, generator, dtype, device), basis[: j + 1])
            basis[j + 1] = w / torch.linalg.vector_norm(w)
            beta.append(0.0)
        else:
            basis[j + 1] = w / b
            beta.append(b)
    m = len(alpha)
    k_top, k_bot = min(k, m), min(bottom, m)
    top_idx = torch.arange(m - 1, m - 1 - k_top, -1)
    bot_idx = torch.arange(k_bot)

    def ritz_vectors(idx: Tensor) -> Tensor | None:
        if not vectors:
            return None
        coef = s[:, idx].T.to(device=device, dtype=dtype)
        return _fix_signs(coef @ basis[:m])

    return LanczosResult(
        top=theta[top_idx].clone(),
        bottom=theta[bot_idx].clone(),
        top_errors=errors[top_idx].clone(),
        bottom_errors=errors[bot_idx].clone(),
        top_vectors=ritz_vectors(top_idx),
        bottom_vectors=ritz_vectors(bot_idx),
        ritz_values=theta.clone(),
        iterations=m,
        matvecs=m,
        converged=converged,
        basis=basis[:m] if keep_basis else None,
        ritz_coefficients=s if keep_basis else None,
    )


def _converged(theta: Tensor, errors: Tensor, k: int, bottom: int, tol: float, scale: float) -> bool:
    m = len(theta)
    floor = 1e-12 * scale
    for i in range(m - 1, m - 1 - min(k, m), -1):
        if errors[i] > tol * max(abs(float(theta[i])), floor):
            return False
    for i in range(min(bottom, m)):
        if errors[i] > tol * max(abs(float(theta[i])), scale):
            return False
    return True


def _fix_signs(vectors: Tensor) -> Tensor:
    """Each row times ±1 so that its largest-magnitude entry is positive (a deterministic sign)."""
    if vectors.numel() == 0:
        return vectors
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True)))
    return vectors * torch.where(signs == 0, 1.0, signs).to(vectors.dtype)


def tridiagonalize(matmat: MatMat, starts: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """`steps` Lanczos steps from each row of `starts` (R, n) in lockstep: (alpha (R, m), beta (R, m-1)).

    Full reorthogonalization within each run; one `matmat` of the R current vectors per step.
    A run that finds an invariant subspace continues with zero vectors, which leaves its
    Gauss quadrature (Golub & Welsch 1969) unchanged: the padded block carries no weight.
    """
    runs, n = starts.shape
    steps = min(steps, n)
    basis = torch.zeros(runs, steps, n, dtype=starts.dtype, device=starts.device)
    norms = torch.linalg.vector_norm(starts, dim=1, keepdim=True)
    basis[:, 0] = starts / norms
    alpha = torch.zeros(runs, steps, dtype=torch.float64)
    beta = torch.zeros(runs, max(steps - 1, 0), dtype=torch.float64)
    for j in range(steps):
        w = matmat(basis[:, j]).to(starts.dtype)
        alpha[:, j] = (w * basis[:, j]).sum(1).double().cpu()
        for _ in range(2):
            w = w - torch.einsum("rm,rmn->rn", torch.einsum("rmn,rn->rm", basis[:, : j + 1], w), basis[:, : j + 1])
        if j + 1 == steps:
            break
        b = torch.linalg.vector_norm(w, dim=1)
        alive = b > 1e-10 * alpha[:, : j + 1].abs().max(dim=1).values.clamp_min(1e-300).to(b)
        beta[:, j] = torch.where(alive, b, 0).double().cpu()
        basis[:, j + 1] = torch.where(alive[:, None], w / torch.where(alive, b, 1)[:, None], 0)
    return alpha, beta
