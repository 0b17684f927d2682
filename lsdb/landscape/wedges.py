"""The wedge toy model of Fort & Jastrzebski 2019 and its three experiments.

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§3) model the low-loss region of a network as a union of high-dimensional wedges: in a
D-dimensional space, each wedge is long in D − n directions and short in the other n. Their
surrogate keeps only the geometry: the loss at x is its distance to the nearest wedge, the
union of the (D − n)-dimensional subspaces {x : x_S = 0} over all n-subsets S of coordinates,

    L(x) = sqrt(Σ of the n smallest x_i²).

The model reproduces, with nothing but this geometry, what the paper finds in real networks:

1. `hyperplane_experiment`: optimizing on a random affine subspace of dimension d reaches zero
   loss exactly when d ≥ n (a d-plane meets a (D − n)-plane in general position iff d ≥ n) —
   the "intrinsic dimension" threshold of Li et al. 2018 (§3.1, Fig. 2);
2. `tunnel_experiment`: the tunnel between two optima on different wedges (`lsdb.landscape.tunnels`)
   has low loss, and its deviations from the straight line form two clusters (§4.3, Fig. 3);
3. `radial_experiment`: from a point on a wedge, the loss rises at almost the same distance
   along every random direction (§4.2, Fig. 5), because ‖u_S‖ concentrates at sqrt(n / D).

Pure torch, float64 by default; every random draw comes from a `torch.Generator` seeded by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lsdb.landscape.radial import RadialWidths, radial_widths
from lsdb.landscape.tunnels import Tunnel, cosine_matrix, optimize_path, polyline, tunnel


def wedge_sq(x: Tensor, n: int) -> Tensor:
    """Σ of the n smallest x_i² over the last dim: the squared distance to the nearest wedge
    (differentiable almost everywhere; its gradient flows to the n selected coordinates)."""
    if not 0 <= n <= x.shape[-1]:
        raise ValueError(f"n must be between 0 and D = {x.shape[-1]}, got {n}")
    if n == 0:
        return x.new_zeros(x.shape[:-1])
    return torch.topk(x.square(), n, dim=-1, largest=False).values.sum(dim=-1)


def wedge_loss(x: Tensor, n: int) -> Tensor:
    """L(x) = sqrt(Σ of the n smallest x_i²), the distance to the nearest wedge (§3), over the last dim."""
    return wedge_sq(x, n).sqrt()


def wedge_point(dim: int, zero: Sequence[int], generator: torch.Generator, margin: float = 1.0,
                signs: Tensor | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """A point of the wedge {x_S = 0} for S = `zero`: the other coordinates are ±(margin + |N(0, 1)|),
    with random signs unless `signs` are given, so that S stays the nearest wedge nearby."""
    x = torch.randn(dim, generator=generator, dtype=dtype)
    x = (torch.sign(x) if signs is None else signs.to(dtype)) * (margin + x.abs())
    x[list(zero)] = 0.0
    return x


def random_subspace(dim: int, d: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """A (dim, d) matrix with orthonormal columns spanning a uniformly random d-dimensional subspace."""
    q, r = torch.linalg.qr(torch.randn(dim, d, generator=generator, dtype=torch.float64))
    return (q * torch.sign(r.diagonal())).to(dtype)


def optimize_on_subspace(n: int, origin: Tensor, basis: Tensor, steps: int, method: str = "newton",
                         lr: float = 1.0) -> tuple[Tensor, Tensor]:
    """Minimize ½ L²(origin + M c) over c ∈ R^d (M = `basis`, orthonormal columns), from c = 0.

    ½ L² is piecewise quadratic: ½‖x_S‖² with S the n smallest coordinates of x. ``"newton"``
    takes Newton steps on the current piece (the least-squares solution of M_S c = −origin_S, by
    pseudo-inverse: zero loss in one step when d ≥ n and M_S has full row rank); ``"gd"`` takes
    gradient steps −lr M_Sᵀ x_S (stable for lr ≤ 1, since M_Sᵀ M_S ⪯ I, but slow when M_S is ill
    conditioned, as it is at d = n). Both never increase L. Returns (final point, L before each
    step and after the last (steps + 1,)).
    """
    if method not in ("newton", "gd"):
        raise ValueError(f"method must be newton or gd, got {method!r}")
    c = torch.zeros(basis.shape[1], dtype=origin.dtype)
    losses = torch.empty(steps + 1, dtype=torch.float64)
    for step in range(steps + 1):
        x = origin + basis @ c
        losses[step] = float(wedge_sq(x, n).sqrt())
        if step == steps:
            break
        if method == "newton" and step > 0 and losses[step] >= losses[step - 1]:
            losses[step + 1:] = losses[step]  # the nearest wedge is stable: further steps change nothing
            break
        idx = torch.topk(x.square(), n, largest=False).indices
        if method == "newton":
            c = c - torch.linalg.lstsq(basis[idx], x[idx].unsqueeze(1), driver="gelsd").solution.squeeze(1)
        else:
            c = c - lr * (basis[idx].T @ x[idx])  # ∇_c ½‖x_S‖² with S fixed at the current nearest wedge
    return origin + basis @ c, losses


@dataclass(frozen=True)
class HyperplaneRun:
    """`final_loss` (len(dims), trials): L after optimizing on random d-planes; `curves` the mean L per step."""

    dims: Tensor
    final_loss: Tensor
    curves: Tensor


def hyperplane_experiment(dim: int, n: int, dims: Sequence[int], trials: int, steps: int, seed: int,
                          scale: float = 1.0, method: str = "newton", lr: float = 1.0) -> HyperplaneRun:
    """Experiment 1: for each d in `dims`, `trials` random affine d-planes through a random origin
    (N(0, scale²) coordinates), each optimized by `optimize_on_subspace`. Zero is reached iff d ≥ n."""
    gen = torch.Generator().manual_seed(seed)
    final = torch.empty(len(dims), trials, dtype=torch.float64)
    curves = torch.zeros(len(dims), steps + 1, dtype=torch.float64)
    for i, d in enumerate(dims):
        if not 1 <= d <= dim:
            raise ValueError(f"subspace dimensions must be between 1 and D = {dim}, got {d}")
        for j in range(trials):
            origin = scale * torch.randn(dim, generator=gen, dtype=torch.float64)
            _, losses = optimize_on_subspace(n, origin, random_subspace(dim, d, gen), steps, method, lr)
            final[i, j] = losses[-1]
            curves[i] += losses / trials
    return HyperplaneRun(torch.tensor(list(dims)), final, curves)


@dataclass(frozen=True)
class WedgeTunnel:
    """The tunnel between two wedge optima: the path, L along it and along the line at `t`, the
    deviation cosines (K−1, K−1), which wedge (0: start's, 1: end's, −1: another) each knot lies on, and
    the share of the start wedge's coordinates among each knot's n smallest (1 on S_a, 0 on S_b)."""

    path: Tunnel
    t: Tensor
    path_loss: Tensor
    line_loss: Tensor
    cosines: Tensor
    knot_wedge: Tensor
    knot_start_share: Tensor


def tunnel_experiment(dim: int, n: int, n_pieces: int, steps: int, lr: float, seed: int,
                      path_steps: int = 0, per_segment: int = 8) -> WedgeTunnel:
    """Experiment 2: optima on the wedges S_a = {0..n−1} and S_b = {n..2n−1} joined by `tunnel`
    (then `optimize_path` for `path_steps` steps) on ½ L²; the straight line crosses high loss.

    Both optima share the signs of their other coordinates, so that on the line no other
    coordinate passes through zero and the nearest wedge is S_a for small t and S_b for large t.
    The knots then fall onto S_a before the middle and onto S_b after it: two clusters of
    deviations. The segment that joins the two clusters still crosses a barrier, which the
    whole-path optimization removes by moving the middle knots into the wedges' intersection.
    """
    if 2 * n > dim:
        raise ValueError(f"two disjoint wedges need D >= 2n, got D={dim}, n={n}")
    gen = torch.Generator().manual_seed(seed)
    wedge_a, wedge_b = list(range(n)), list(range(n, 2 * n))
    signs = torch.where(torch.rand(dim, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    start, end = wedge_point(dim, wedge_a, gen, signs=signs), wedge_point(dim, wedge_b, gen, signs=signs)

    def objective(x: Tensor) -> Tensor:
        return 0.5 * wedge_sq(x, n)

    path = tunnel(objective, start, end, n_pieces, steps, lr)
    if path_steps:
        path = optimize_path(objective, path, path_steps, lr, generator=gen)
    points, t = polyline(path.knots, per_segment)
    line, _ = polyline(path.line, per_segment)
    nearest = torch.topk(path.knots.square(), n, dim=1, largest=False).indices
    share_a = (nearest < n).to(torch.float64).mean(dim=1)
    share_b = ((nearest >= n) & (nearest < 2 * n)).to(torch.float64).mean(dim=1)
    which = torch.full((len(nearest),), -1, dtype=torch.int64)
    which[share_a == 1.0] = 0
    which[share_b == 1.0] = 1
    return WedgeTunnel(path, t, wedge_loss(points, n), wedge_loss(line, n), cosine_matrix(path.deviations), which,
                       share_a)


def radial_experiment(dim: int, n: int, n_directions: int, threshold: float, max_radius: float, seed: int,
                      n_grid: int = 40, offset: float = 0.0) -> RadialWidths:
    """Experiment 3: from a point of the wedge {x_0..x_{n−1} = 0} (moved `offset` off it along a random
    direction), the first radius where L exceeds `threshold` along random unit directions."""
    gen = torch.Generator().manual_seed(seed)
    center = wedge_point(dim, range(n), gen)
    if offset:
        away = torch.randn(dim, generator=gen, dtype=torch.float64)
        center = center + offset * away / torch.linalg.vector_norm(away)
    directions = torch.randn(n_directions, dim, generator=gen, dtype=torch.float64)
    directions = directions / torch.linalg.vector_norm(directions, dim=1, keepdim=True)
    return radial_widths(lambda pts: wedge_loss(pts, n), center, directions, threshold, max_radius, n_grid)
