"""Shape summaries of sampled losses: the barrier along a path, ε-sharpness and convexity of a grid.

All three work on sampled values only (NumPy arrays), so they describe the loss along the
chosen path or in the chosen plane, at the sampling's resolution, not the full-dimensional loss.

* **barrier** (linear mode connectivity, Frankle et al. 2020, "Linear Mode Connectivity and
  the Lottery Ticket Hypothesis", §2, on the error; used along curves by Garipov et al. 2018):
  the largest rise of v(t) above the straight line (1 − t) v(0) + t v(1) between the end values.
* **ε-sharpness** (after Keskar et al. 2017, "On Large-Batch Training for Deep Learning", §2.2.1,
  which maximizes over a box around the minimum): over the grid points p ≠ 0 with
  ‖p‖ ≤ ε, the mean and the maximum of L(p) − L(0). With filter-normalized directions
  (Li et al. 2018, §4) ε is relative to the weights' scale, so sharpness is comparable across
  networks. Keskar's own ratio is reported as 100 · max / (1 + L(0)).
* **convexity**: the fraction of interior grid points where the central-difference Hessian
  of the surface, H = [[L_xx, L_xy], [L_xy, L_yy]], is positive semidefinite (for a 1D
  surface: L_xx ≥ 0). Li et al. 2018 (§7) map |λ_min/λ_max| of the full Hessian; this is its
  counterpart on the plotted plane. It is 1.0 for a convex bowl (and for a plane), 0.0 for a
  saddle or a cap. A point counts as convex when λ_min(H) ≥ −τ, with
  τ = 1e-6 · max |λ| over the grid + 16 · eps · max |L| / h², h the smaller grid step and eps
  the evaluation dtype's machine epsilon, so rounding in the loss does not flip a flat point.
"""

from __future__ import annotations

import numpy as np

__all__ = ["barrier", "convexity", "sharpness"]


def barrier(alphas: np.ndarray, values: np.ndarray) -> tuple[float, float] | None:
    """(max over grid α in [0, 1] of v(α) − ((1 − α) v(0) + α v(1)), the α where it is reached).

    Non-negative, since α = 0 and α = 1 are on the grid and contribute 0; None when they
    are not on the grid. NaN values are skipped.
    """
    at0, at1 = np.flatnonzero(alphas == 0.0), np.flatnonzero(alphas == 1.0)
    if not len(at0) or not len(at1):
        return None
    inside = (alphas >= 0.0) & (alphas <= 1.0)
    a = alphas[inside]
    gap = values[inside] - ((1.0 - a) * values[at0[0]] + a * values[at1[0]])
    if not np.isfinite(gap).any():
        return None
    k = int(np.nanargmax(gap))
    return float(gap[k]), float(a[k])


def sharpness(
    xs: np.ndarray, ys: np.ndarray | None, loss: np.ndarray, center_loss: float, radius: float
) -> tuple[float, float] | None:
    """(mean, max) of L(p) − L(0) over grid points with 0 < ‖p‖ ≤ `radius`; None when there are none.

    `loss` has shape (nx,) for a 1D grid or (ny, nx) for a 2D one (``loss[j, i]`` at ``(xs[i], ys[j])``).
    """
    if ys is None:
        dist = np.abs(xs)
    else:
        gx, gy = np.meshgrid(xs, ys)
        dist = np.hypot(gx, gy)
    mask = (dist > 0) & (dist <= radius * (1 + 1e-12)) & np.isfinite(loss)
    if not mask.any():
        return None
    rise = loss[mask] - center_loss
    return float(rise.mean()), float(rise.max())


def convexity(loss: np.ndarray, xs: np.ndarray, ys: np.ndarray | None = None, eps: float = 2.2e-16) -> float:
    """Fraction of interior grid points whose finite-difference Hessian is PSD (see the module docstring).

    NaN when the grid has no interior point with finite neighbours. Assumes evenly spaced axes.
    """
    if ys is None:
        if len(xs) < 3:
            return float("nan")
        h = float(xs[1] - xs[0])
        lam_min = (loss[2:] - 2 * loss[1:-1] + loss[:-2]) / h**2
        lam_abs = np.abs(lam_min)
    else:
        if len(xs) < 3 or len(ys) < 3:
            return float("nan")
        hx, hy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
        h = min(hx, hy)
        c = loss[1:-1, 1:-1]
        lxx = (loss[1:-1, 2:] - 2 * c + loss[1:-1, :-2]) / hx**2
        lyy = (loss[2:, 1:-1] - 2 * c + loss[:-2, 1:-1]) / hy**2
        lxy = (loss[2:, 2:] - loss[2:, :-2] - loss[:-2, 2:] + loss[:-2, :-2]) / (4 * hx * hy)
        mean, radius = (lxx + lyy) / 2, np.hypot((lxx - lyy) / 2, lxy)
        lam_min = mean - radius
        lam_abs = np.abs(mean) + radius
    ok = np.isfinite(lam_min)
    if not ok.any():
        return float("nan")
    scale = float(np.abs(loss[np.isfinite(loss)]).max())
    tau = 1e-6 * float(lam_abs[ok].max()) + 16 * eps * scale / h**2
    return float((lam_min[ok] >= -tau).mean())
