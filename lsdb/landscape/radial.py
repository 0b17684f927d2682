"""The radial width of the low-loss tunnel around a point: how far one can walk before the loss rises.

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§4.2, Fig. 5–7) probe an optimum θ along random directions u and find that the loss rises at
almost the same distance whichever direction is taken — the optimum sits in a tunnel of a
well-defined radial width, which grows with the learning rate, with smaller batches, with L2
regularization and with dropout (up to a point). The width along u is the smallest r > 0 with
L(θ + r u) > τ for a loss threshold τ.

`radial_widths` finds it in two stages: a scan of L(θ + r u) on a grid of radii (the loss
profile, also worth plotting), then bisection between the last grid radius below τ and the
first above it. All directions advance together, so every stage is one batched evaluation.
A direction whose loss stays below τ up to the largest radius is *censored*: its width is
reported as that radius (a lower bound) and flagged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: Bytes of points built at once for one `batch_loss` call (the rest of a scan waits its turn).
POINTS_BYTES = 256 * 2**20

BatchLoss = Callable[[Tensor], Tensor]
"""``batch_loss(points (B, P)) -> losses (B,)``, no gradients needed."""


@dataclass(frozen=True)
class RadialWidths:
    """Widths (R,) along each direction; the scanned `radii` (G,) and loss `profiles` (R, G);
    `censored` (R,) marks directions that never crossed the threshold (width = the last radius)."""

    widths: Tensor
    radii: Tensor
    profiles: Tensor
    censored: Tensor
    center_loss: float
    threshold: float


def radial_profiles(batch_loss: BatchLoss, center: Tensor, directions: Tensor, radii: Tensor) -> Tensor:
    """L(θ + r_g u_j) for every direction (R, P) and radius (G,): float64 (R, G)."""
    n_dirs, n_radii = directions.shape[0], len(radii)
    index = torch.arange(n_dirs).repeat_interleave(n_radii)
    losses = losses_at(batch_loss, center, directions, index, radii.repeat(n_dirs))
    return losses.reshape(n_dirs, n_radii)


def losses_at(batch_loss: BatchLoss, center: Tensor, directions: Tensor, index: Tensor, radii: Tensor) -> Tensor:
    """L(θ + r_i u_{index_i}) for each i: float64 on the CPU, the points built `POINTS_BYTES` at a time."""
    per_call = max(1, POINTS_BYTES // max(1, center.numel() * center.element_size()))
    out = []
    for i in range(0, len(index), per_call):
        idx, r = index[i:i + per_call], radii[i:i + per_call].to(center)
        points = center + r.unsqueeze(1) * directions[idx.to(directions.device)].to(center)
        out.append(batch_loss(points).to(torch.float64).cpu())
        del points
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def radial_widths(
    batch_loss: BatchLoss,
    center: Tensor,
    directions: Tensor,
    threshold: float,
    max_radius: float,
    n_grid: int = 20,
    iters: int = 20,
    center_loss: float | None = None,
) -> RadialWidths:
    """The first radius r ∈ (0, max_radius] with L(θ + r u) > `threshold`, along each row u of `directions`.

    The scan uses `n_grid` evenly spaced radii in (0, max_radius]; then `iters` bisection steps
    shrink each bracket by half, so the error is at most max_radius / n_grid / 2^(iters+1). A
    crossing between two grid radii that comes back below τ before the next is missed (the scan
    sees the first grid radius above τ); a finer grid finds it. If the centre itself is above
    the threshold, every width is 0.
    """
    if n_grid < 1 or iters < 0 or not max_radius > 0:
        raise ValueError("n_grid must be >= 1, iters >= 0 and max_radius > 0")
    if directions.dim() != 2 or directions.shape[1] != center.shape[0]:
        raise ValueError("directions must be (R, P) for a center of length P")
    if center_loss is None:
        center_loss = float(batch_loss(center.unsqueeze(0))[0])
    radii = torch.linspace(0.0, max_radius, n_grid + 1, dtype=torch.float64)[1:]
    profiles = radial_profiles(batch_loss, center, directions, radii)
    n_dirs = directions.shape[0]
    above = profiles > threshold
    crossed = above.any(dim=1)
    first = torch.where(crossed, above.to(torch.int64).argmax(dim=1), torch.full((n_dirs,), n_grid - 1))
    hi = radii[first].clone()
    lo = torch.where(first > 0, radii[(first - 1).clamp_min(0)], torch.zeros(n_dirs, dtype=torch.float64))
    if center_loss > threshold:
        return RadialWidths(torch.zeros(n_dirs, dtype=torch.float64), radii, profiles,
                            torch.zeros(n_dirs, dtype=torch.bool), center_loss, threshold)
    todo = crossed.clone()
    if bool(todo.any()):
        for _ in range(iters):
            mid = (lo + hi) / 2
            idx = todo.nonzero().squeeze(1)
            is_above = losses_at(batch_loss, center, directions, idx, mid[idx]) > threshold
            hi[idx] = torch.where(is_above, mid[idx], hi[idx])
            lo[idx] = torch.where(is_above, lo[idx], mid[idx])
    widths = torch.where(crossed, (lo + hi) / 2, radii[-1].expand(n_dirs))
    return RadialWidths(widths, radii, profiles, ~crossed, center_loss, threshold)

