"""The trace and the eigenvalue density of a symmetric operator known only through products.

* **Trace**: Hutchinson's estimator (Hutchinson 1989, "A stochastic estimator of the trace of
  the influence matrix for Laplacian smoothing splines"): tr(H) = E[zᵀ H z] for Rademacher
  probes z (entries ±1), whose variance 2 Σ_{i≠j} H_ij² is the smallest among i.i.d. probe
  distributions (Avron & Toledo 2011, J. ACM 58(2)). `hutchinson_trace` draws probes until
  the standard error of the mean, s/√p, falls below ``tol · |mean|`` (after at least
  `min_probes`) or `max_probes` are spent, and reports the standard error it reached: the
  estimate's honest uncertainty, not the tolerance asked for.
* **Spectral density**: stochastic Lanczos quadrature (Lin, Saad & Yang 2016, "Approximating
  spectral densities of large matrices", SIAM Review 58(1); Ghorbani, Krishnan & Xiao 2019,
  "An Investigation into Neural Net Optimization via Hessian Eigenvalue Density", ICML; as in
  PyHessian, Yao et al. 2020). For a random unit vector v, m Lanczos steps give T_m; its
  eigenvalues θ_j and the squared first components τ_j of its eigenvectors are the nodes and
  weights of the m-point Gauss quadrature of the spectral measure Σ_i (vᵀu_i)² δ(λ − λ_i)
  (Golub & Welsch 1969, "Calculation of Gauss quadrature rules", Math. Comp. 23), whose
  expectation is the eigenvalue density (1/n) Σ_i δ(λ − λ_i). Averaging R runs and
  replacing each node by a Gaussian of width σ gives a smooth density on a grid, normalized
  so that its trapezoid integral over the grid is exactly 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lsdb.landscape.lanczos import MatMat, tridiagonalize


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson's estimate: `value` ± `stderr` from `probes` samples zᵀHz (float64 `samples`)."""

    value: float
    stderr: float
    probes: int
    samples: Tensor
    converged: bool


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """Entries ±1 with equal probability, drawn on the CPU."""
    return torch.randint(0, 2, shape, generator=generator).to(dtype).mul_(2).sub_(1)


def hutchinson_trace(
    matmat: MatMat,
    n: int,
    *,
    tol: float = 1e-2,
    min_probes: int = 10,
    max_probes: int = 200,
    block: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> TraceEstimate:
    """tr(H) by Hutchinson's estimator with Rademacher probes, stopped on its standard error.

    Probes are multiplied `block` at a time (``matmat`` of a (block, n) stack). Stops once
    ``stderr <= tol * |mean|`` with at least `min_probes` (≥ 2) samples, or after `max_probes`.
    `progress(probes_so_far)` is called after every block.
    """
    if max_probes < 2:
        raise ValueError(f"max_probes must be >= 2 (a standard error needs two samples), got {max_probes}")
    min_probes = max(2, min(min_probes, max_probes))
    samples: list[float] = []
    converged = False
    while len(samples) < max_probes:
        m = min(block, max_probes - len(samples))
        z = rademacher((m, n), generator, dtype).to(device)
        hz = matmat(z)
        samples += (z.double() * hz.double()).sum(1).cpu().tolist()
        if progress is not None:
            progress(len(samples))
        if len(samples) >= min_probes:
            mean, err = _mean_stderr(samples)
            if err <= tol * abs(mean):
                converged = True
                break
    mean, err = _mean_stderr(samples)
    return TraceEstimate(mean, err, len(samples), torch.tensor(samples, dtype=torch.float64), converged)


def _mean_stderr(samples: list[float]) -> tuple[float, float]:
    t = torch.tensor(samples, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=True) / math.sqrt(len(t)))


@dataclass(frozen=True)
class SpectralDensity:
    """A smoothed eigenvalue density: `density` on `grid` (trapezoid integral 1), from quadrature
    `nodes` and `weights` (R, m) of R stochastic Lanczos runs, broadened by Gaussians of width `sigma`."""

    grid: Tensor
    density: Tensor
    nodes: Tensor
    weights: Tensor
    sigma: float

    def trace(self, n: int) -> float:
        """The SLQ estimate of tr(H) = n · E[Σ_j τ_j θ_j] (a by-product; Ubaru, Chen & Saad 2017)."""
        return float(n * (self.nodes * self.weights).sum(1).mean())


def slq_quadrature(
    matmat: MatMat,
    n: int,
    *,
    runs: int = 1,
    steps: int = 80,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Gauss quadrature nodes and weights (R, m) of the spectral measure of H from R random unit vectors.

    Golub & Welsch 1969: the nodes are the eigenvalues of T_m, the weights the squared first
    components of its eigenvectors (each row of weights sums to 1). The R runs advance in lockstep.
    """
    starts = torch.randn(runs, n, generator=generator, dtype=dtype).to(device)
    alpha, beta = tridiagonalize(matmat, starts, steps)
    nodes, weights = [], []
    for a, b in zip(alpha, beta, strict=True):
        t = torch.diag(a) + torch.diag(b, 1) + torch.diag(b, -1)
        theta, s = torch.linalg.eigh(t)
        nodes.append(theta)
        weights.append(s[0] ** 2)
    return torch.stack(nodes), torch.stack(weights)


def gaussian_density(
    nodes: Tensor, weights: Tensor, bins: int = 1000, sigma: float = 0.01
) -> tuple[Tensor, Tensor, float]:
    """(grid, density, σ): Σ_runs Σ_j τ_j N(t; θ_j, σ²) / R on `bins` points, trapezoid integral 1.

    σ is `sigma` times the width of the nodes' range (Lin, Saad & Yang 2016, §3; PyHessian
    broadens the same way). The grid spans the nodes' range padded by 1 % of it plus 5σ on
    each side, so the Gaussians' tails are inside it.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    nodes, weights = nodes.double().reshape(len(nodes), -1), weights.double().reshape(len(nodes), -1)
    live = weights > 0
    lo, hi = float(nodes[live].min()), float(nodes[live].max())
    width = hi - lo if hi > lo else max(abs(hi), 1.0)
    s = sigma * width
    pad = 0.01 * width + 5 * s
    grid = torch.linspace(lo - pad, hi + pad, bins, dtype=torch.float64)
    z = (grid[:, None, None] - nodes[None]) / s
    kernel = torch.exp(-0.5 * z**2) / (s * math.sqrt(2 * math.pi))
    density = (kernel * weights[None]).sum(-1).mean(-1)
    density = density / torch.trapezoid(density, grid)
    return grid, density, s


def spectral_density(
    matmat: MatMat,
    n: int,
    *,
    runs: int = 1,
    steps: int = 80,
    bins: int = 1000,
    sigma: float = 0.01,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> SpectralDensity:
    """The eigenvalue density of H by stochastic Lanczos quadrature (Ghorbani et al. 2019, §2)."""
    nodes, weights = slq_quadrature(matmat, n, runs=runs, steps=steps, generator=generator, dtype=dtype, device=device)
    grid, density, s = gaussian_density(nodes, weights, bins, sigma)
    return SpectralDensity(grid, density, nodes, weights, s)
