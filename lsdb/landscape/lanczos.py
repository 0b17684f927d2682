"""Extreme eigenpairs of a symmetric operator known only through products, by the Lanczos method.

Lanczos (1950, "An iteration method for the solution of the eigenvalue problem of linear
differential and integral operators", J. Res. Nat. Bur. Standards 45) builds an orthonormal
basis Q_m of the Krylov space span{q, Hq, ..., H^{m-1}q} in which H is the tridiagonal
T_m = Q_mᵀ H Q_m; the eigenvalues of T_m (Ritz values) approach the extreme eigenvalues of H
after far fewer products than power iteration needs (Saad 2011, "Numerical Methods for Large
Eigenvalue Problems", §6.6). Every new vector is reorthogonalized against the whole basis
(after the three-term recurrence, one classical Gram–Schmidt pass: the recurrence is the first
of "twice is enough"), so no spurious copies of converged values appear and the basis stays
orthonormal to working precision (Parlett 1998, "The Symmetric Eigenvalue Problem", §13.1).
The basis lives in the operator's dtype and device; T_m, its eigenpairs (LAPACK's tridiagonal
solver) and the error bounds are NumPy float64 bookkeeping, a small share of a step.

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

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
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
    norms = torch.linalg.vector_norm(rows, dim=1)
    warm = torch.mv(rows.T, 1 / torch.where(norms > 0, norms, 1))  # the sum of the normalized rows
    size = float(torch.linalg.vector_norm(warm))
    if not size > 0:
        return rand
    v = warm.mul_(math.sqrt(max(1.0 - noise**2, 0.0)) / size).add_(rand, alpha=noise)
    return v.div_(torch.linalg.vector_norm(v))


def _orthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """w minus its components along the rows of `basis` (classical Gram–Schmidt, twice: one matmul each way)."""
    for _ in range(2):
        w = w - (basis @ w) @ basis
    return w


def _ritz(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal T with diagonal `alpha`
    and off-diagonal `beta`, in float64 (LAPACK's divide-and-conquer ``dstevd``, the driver
    ``scipy.linalg.eigh_tridiagonal`` picks, called directly: its argument checks cost 4x the solve at m ≈ 10)."""
    if len(alpha) == 1:
        return alpha.copy(), np.ones((1, 1))
    values, vectors, info = scipy.linalg.lapack.dstevd(alpha, beta, compute_v=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the tridiagonal eigensolver failed (LAPACK dstevd info={info})")
    return values, vectors


def _ritz_pairs(alpha: np.ndarray, beta: np.ndarray, b: float, exhausted: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values (ascending), T's eigenvectors and the error bounds after a step whose new β is `b`."""
    theta, s = _ritz(alpha, beta)
    residuals = np.zeros(len(alpha)) if exhausted else b * np.abs(s[-1])
    return theta, s, _error_bounds(theta, residuals)


def _spectral_bound(alpha: np.ndarray, beta: np.ndarray) -> float:
    """Gershgorin's bound on |θ| for T (diagonal `alpha`, off-diagonal `beta`): at most 3x the largest |θ|,
    a scale for the breakdown test that needs no eigensolve."""
    radius = np.abs(alpha).copy()
    radius[1:] += np.abs(beta)
    radius[:-1] += np.abs(beta)
    return float(radius.max())


def _error_bounds(theta: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """`ritz_error_bounds` on NumPy float64 arrays (the per-step form)."""
    gaps = np.full(len(theta), math.inf)
    if len(theta) > 1:
        spacing = np.diff(theta)
        gaps[1:] = np.minimum(gaps[1:], spacing - residuals[:-1])
        gaps[:-1] = np.minimum(gaps[:-1], spacing - residuals[1:])
    resolved = (gaps > residuals) & np.isfinite(gaps)
    quad = residuals**2 / np.where(resolved, gaps, 1.0)
    return np.where(resolved, np.minimum(residuals, quad), residuals)


def ritz_error_bounds(theta: Tensor, residuals: Tensor) -> Tensor:
    """min(r_i, r_i²/gap_i) with gap_i = min over neighbours j of |θ_i − θ_j| − r_j (r_i if unresolved).

    The residual r_i bounds the distance from θ_i to the nearest eigenvalue rigorously; r_i²/gap_i
    does once gap_i bounds that eigenvalue's distance to the rest of the spectrum, which Ritz
    values estimate from within (the usual practice, Parlett 1998, §11.7).

    `theta` ascending (float64), `residuals` the matching β_m |s_{m,i}|. Parlett 1998, Thm 11.7.1.
    """
    return torch.from_numpy(_error_bounds(theta.double().cpu().numpy(), residuals.double().cpu().numpy()))


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
    first_check = min(max(wanted + 1, min_iter), n)  # no convergence test (and no Ritz values) before this step
    # memory follows use: on a CPU the untouched rows of an empty tensor take no pages; elsewhere the
    # basis grows by doubling
    cpu = torch.device(device or "cpu").type == "cpu"
    basis = torch.empty(steps if cpu else min(steps, 16), n, dtype=dtype, device=device)
    basis[0] = start_vector(n, start, start_noise, generator, dtype, device)
    alpha, beta = np.zeros(steps), np.zeros(steps)  # T_m's diagonal and off-diagonal, float64
    theta, s, errors = np.zeros(0), np.zeros((0, 0)), np.zeros(0)
    converged = False
    m, b = 0, 0.0
    for j in range(steps):
        m = j + 1
        w = matvec(basis[j]).to(device=device, dtype=dtype)
        alpha[j] = float(torch.dot(w, basis[j]))
        w = torch.sub(w, basis[j], alpha=alpha[j])  # the three-term recurrence (a new tensor: w may alias q_j) ...
        if j > 0:
            w.sub_(basis[j - 1], alpha=beta[j - 1])
        w.addmv_(basis[:m].T, torch.mv(basis[:m], w), alpha=-1.0)  # ... then one Gram–Schmidt pass against the basis
        b = float(torch.linalg.vector_norm(w))
        if progress is not None:
            progress(m)
        if m >= first_check:
            theta, s, errors = _ritz_pairs(alpha[:m], beta[: m - 1], b, m == n)
            converged = _converged(theta, errors, k, bottom, tol, float(np.abs(theta).max()))
        if converged or m == steps:
            break
        if m == len(basis):
            basis = torch.cat([basis, torch.empty(min(len(basis), steps - len(basis)), n, dtype=dtype, device=device)])
        if b <= 1e-10 * max(_spectral_bound(alpha[:m], beta[: m - 1]), 1e-300) or b == 0.0:
            w = _orthogonalize(random_unit(n, generator, dtype, device), basis[:m])  # invariant subspace:
            torch.div(w, torch.linalg.vector_norm(w), out=basis[m])  # continue from a fresh direction
        else:
            torch.div(w, b, out=basis[m])
            beta[j] = b
    if len(theta) != m:  # stopped before the first convergence test
        theta, s, errors = _ritz_pairs(alpha[:m], beta[: m - 1], b, m == n)
    theta_t, s_t, errors_t = torch.from_numpy(theta), torch.from_numpy(s), torch.from_numpy(errors)
    k_top, k_bot = min(k, m), min(bottom, m)
    top_idx = torch.arange(m - 1, m - 1 - k_top, -1)
    bot_idx = torch.arange(k_bot)
    top_vectors = bottom_vectors = None
    if vectors:  # both ends in one product with the basis
        coef = s_t[:, torch.cat([top_idx, bot_idx])].T.to(device=device, dtype=dtype)
        top_vectors, bottom_vectors = _fix_signs(coef @ basis[:m]).split([k_top, k_bot])
    return LanczosResult(
        top=theta_t[top_idx].clone(),
        bottom=theta_t[bot_idx].clone(),
        top_errors=errors_t[top_idx].clone(),
        bottom_errors=errors_t[bot_idx].clone(),
        top_vectors=top_vectors,
        bottom_vectors=bottom_vectors,
        ritz_values=theta_t.clone(),
        iterations=m,
        matvecs=m,
        converged=converged,
        basis=basis[:m] if keep_basis else None,
        ritz_coefficients=s_t if keep_basis else None,
    )


def _converged(theta: np.ndarray, errors: np.ndarray, k: int, bottom: int, tol: float, scale: float) -> bool:
    m = len(theta)
    top = slice(max(m - k, 0), m)
    if np.any(errors[top] > tol * np.maximum(np.abs(theta[top]), 1e-12 * scale)):
        return False
    low = slice(0, min(bottom, m))
    return not np.any(errors[low] > tol * np.maximum(np.abs(theta[low]), scale))


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
