"""Directions in parameter space: random, towards a checkpoint, PCA of a trajectory; their normalization.

All functions take and return flat vectors laid out by a `ParamLayout` (see `params`).
Buffer entries of a direction are always zero: running statistics are not parameters.

* Random Gaussian directions and filter normalization: Li et al. 2018, "Visualizing the Loss
  Landscape of Neural Nets" (NeurIPS), §4.
* The direction from one checkpoint to another, θ1 − θ0: Goodfellow, Vinyals & Saxe 2015,
  "Qualitatively characterizing neural network optimization problems" (ICLR), linear interpolation.
* PCA directions of an optimization trajectory: Li et al. 2018, §6.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lsdb.landscape.params import ParamLayout
from lsdb.landscape.wide_svd import wide_svd

Norm = Literal["filter", "layer", "none"]
BiasBN = Literal["ignore", "keep", "copy"]


def random_direction(
    layout: ParamLayout,
    seed: int | None = None,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """A direction d ~ N(0, I) over the parameters (zero on buffers), Li et al. 2018 §4.

    Drawn on the CPU from `generator` (or a fresh one seeded with `seed`) in `dtype` and then moved to
    `device`, so the same seed gives the same direction on every device. With `out` (a flat vector
    of the layout's length, of any dtype and device) the draws are written into it tensor by tensor,
    converted as ``.to(out)`` would: the same values without a second full vector.
    """
    if (seed is None) == (generator is None):
        raise ValueError("give exactly one of seed= and generator=")
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)  # type: ignore[arg-type]
    if out is None:
        d = torch.zeros(layout.numel, dtype=dtype)
        for e in layout.entries:
            if not e.is_buffer:
                d[e.offset:e.stop] = torch.randn(e.numel, generator=gen, dtype=dtype)
        return d.to(device) if device is not None else d
    if out.shape != (layout.numel,):
        raise ValueError(f"out has shape {tuple(out.shape)}; the layout has {layout.numel} entries")
    for e in layout.entries:
        if e.is_buffer:
            out[e.offset:e.stop].zero_()
        else:
            out[e.offset:e.stop].copy_(torch.randn(e.numel, generator=gen, dtype=dtype))
    return out


def random_directions(
    layout: ParamLayout,
    theta: Tensor,
    dims: int,
    *,
    generator: torch.Generator,
    norm: Norm = "filter",
    bias_bn: BiasBN = "ignore",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """`dims` normalized random directions (dims, W) at `theta` (W entries), in `dtype` on `device`
    (default: `theta`'s).

    Row j is ``normalize_direction(random_direction(layout, generator=generator).to(device, dtype), theta,
    layout, norm, bias_bn)`` for j = 0, 1, ... in turn, bit for bit, but built in place in the returned
    matrix: no temporary direction, so the peak is θ and the matrix alone (what a surface of a large
    model needs).
    """
    matrix = torch.empty(dims, theta.shape[0], dtype=dtype or theta.dtype,
                         device=device if device is not None else theta.device)
    for row in matrix:
        random_direction(layout, generator=generator, out=row)
        normalize_direction_(row, theta, layout, norm, bias_bn)
    return matrix


def direction_between(theta0: Tensor, theta1: Tensor) -> Tensor:
    """θ1 − θ0: the segment from one point to another (Goodfellow et al. 2015), in θ0's dtype."""
    if theta0.shape != theta1.shape:
        raise ValueError(f"points have different shapes: {tuple(theta0.shape)} and {tuple(theta1.shape)}")
    return theta1.to(theta0) - theta0


def normalize_direction(
    direction: Tensor,
    theta: Tensor,
    layout: ParamLayout,
    norm: Norm = "filter",
    bias_bn: BiasBN = "ignore",
) -> Tensor:
    """Rescale `direction` to the scale of `theta` (a new tensor; inputs are not modified).

    ``norm="filter"`` (Li et al. 2018, §4, eq. before Fig. 2): every filter is rescaled,
    d_{i,j} ← d_{i,j} ‖θ_{i,j}‖ / ‖d_{i,j}‖, where filter j of tensor i is its slice along
    dim 0 (a conv output channel, a linear row, an embedding's token vector), or dim 1 for a
    transformers ``Conv1D`` weight stored (in, out) (`ParamEntry.filter_dim`). ``norm="layer"``: each tensor as a whole,
    d_i ← d_i ‖θ_i‖ / ‖d_i‖. ``norm="none"``: no rescaling.

    Vector tensors (biases, BatchNorm weights and biases: ``dim <= 1``) follow `bias_bn`:
    ``"ignore"`` zeroes them (the reference code's default ``--xignore biasbn``); ``"keep"``
    normalizes each as a single filter (‖d_i‖ = ‖θ_i‖; unchanged under ``norm="none"``);
    ``"copy"`` sets d_i = θ_i, which is what the reference code does when not ignoring them.
    A zero-norm filter of d stays zero. Buffer entries are always zero.
    """
    return normalize_direction_(direction.clone(), theta, layout, norm, bias_bn)


def normalize_direction_(
    direction: Tensor,
    theta: Tensor,
    layout: ParamLayout,
    norm: Norm = "filter",
    bias_bn: BiasBN = "ignore",
) -> Tensor:
    """`normalize_direction` in place: `direction` is rescaled and returned (`theta` is only read, tensor by
    tensor, so a θ of another dtype is never converted whole)."""
    if norm not in ("filter", "layer", "none"):
        raise ValueError(f"norm must be 'filter', 'layer' or 'none', got {norm!r}")
    if bias_bn not in ("ignore", "keep", "copy"):
        raise ValueError(f"bias_bn must be 'ignore', 'keep' or 'copy', got {bias_bn!r}")
    if direction.shape != theta.shape or direction.dim() != 1:
        raise ValueError("direction and theta must be flat vectors of the same length")
    if direction.numel() not in (layout.numel, layout.n_params):
        raise ValueError(f"vectors have {direction.numel()} entries; the layout has {layout.numel}")
    out = direction
    for e in layout.entries:
        if e.stop > out.numel():
            break
        d, t = out[e.offset:e.stop], theta[e.offset:e.stop].to(out)
        if e.is_buffer:
            d.zero_()
        elif e.is_filter:
            if norm == "filter" and e.filter_dim == 1 and len(e.shape) == 2:  # (in, out): filters are columns
                _rescale_rows(d.view(e.shape).t(), t.view(e.shape).t())
            elif norm == "filter":
                _rescale_rows(d.view(e.shape[0], -1), t.view(e.shape[0], -1))
            elif norm == "layer":
                _rescale_rows(d.view(1, -1), t.view(1, -1))
        elif bias_bn == "ignore":
            d.zero_()
        elif bias_bn == "copy":
            d.copy_(t)
        elif norm != "none":
            _rescale_rows(d.view(1, -1), t.view(1, -1))
    return out


def _rescale_rows(d: Tensor, theta: Tensor) -> None:
    """In place: each row of d gets the norm of the same row of theta (zero rows stay zero)."""
    d_norm = torch.linalg.vector_norm(d, dim=1, keepdim=True)
    t_norm = torch.linalg.vector_norm(theta, dim=1, keepdim=True)
    d.mul_(torch.where(d_norm > 0, t_norm / torch.where(d_norm > 0, d_norm, 1), 0))


#: Entries per slice in `direction_gram`: 8 MB of float64 per direction at a time.
GRAM_CHUNK = 2**20


def direction_gram(directions: Tensor, other: Tensor | None = None, chunk: int = GRAM_CHUNK) -> Tensor:
    """The float64 Gram matrix G = D Dᵀ (J, J) of the rows of `directions` (J, P), or D Bᵀ (J, K) with the
    rows of `other` (K, P), on the CPU.

    Accumulated over slices of `chunk` entries, so no float64 copy of D (or B) is ever whole (for a
    float32 D that copy would be 2 J parameter vectors). ‖d_j‖ = √G_jj; the cosine of d_0 and d_1
    is G_01 / √(G_00 G_11). Agrees with ``D.double() @ B.double().T`` to float64 rounding.
    """
    rows = other if other is not None else directions
    if directions.dim() != 2 or rows.dim() != 2 or rows.shape[1] != directions.shape[1]:
        raise ValueError("directions and other must be (J, P) and (K, P) matrices")
    gram = torch.zeros(directions.shape[0], rows.shape[0], dtype=torch.float64, device=directions.device)
    for start in range(0, directions.shape[1], chunk):
        part = directions[:, start:start + chunk].to(torch.float64)
        gram.addmm_(part, part.t() if other is None else rows[:, start:start + chunk].to(part).t())
    return gram.cpu()


def orthogonalize(directions: Tensor, keep_norm: bool = True) -> Tensor:
    """Gram–Schmidt on the rows of `directions` (J, P): row j loses its components along rows < j.

    With `keep_norm` each row is rescaled back to its original norm, so a filter-normalized
    direction keeps its overall scale (its individual filter norms change slightly). Computed
    in float64 and returned in the input dtype. Two random directions in high dimension are
    already nearly orthogonal (Li et al. 2018, §4); this makes them exactly so.
    """
    if directions.dim() != 2:
        raise ValueError("directions must be a (J, P) matrix")
    work = directions.to(torch.float64, copy=True)  # one float64 copy, never two
    norms = torch.linalg.vector_norm(work, dim=1)
    for j in range(work.shape[0]):
        for i in range(j):
            denom = work[i].dot(work[i])
            if denom > 0:
                work[j] -= (work[i].dot(work[j]) / denom) * work[i]
        if keep_norm:
            new = torch.linalg.vector_norm(work[j])
            if new > 0:
                work[j] *= norms[j] / new
    return work.to(directions.dtype)


def pca_directions(
    points: Tensor | Sequence[Tensor], final: Tensor | None = None, k: int = 2, center: bool = False
) -> tuple[Tensor, Tensor]:
    """The top-`k` PCA directions of a trajectory and their explained variance ratios (Li et al. 2018, §6).

    Builds M with rows θ_i − θ_final (`final` defaults to the last point) and returns the top-k
    right singular vectors of M as a (k, P) matrix, and σ_i² / Σ σ² for each. The rows are
    not centred, as in the paper; ``center=True`` subtracts the row mean first (what the
    reference code's ``sklearn.decomposition.PCA`` does). The sign of each direction is fixed
    so that its largest-magnitude entry is positive. Computed in float64 a block of columns at a
    time (`wide_svd`) and returned in the points' dtype (the ratios in float64).
    """
    mat = torch.stack(list(points)) if not isinstance(points, Tensor) else points
    if mat.dim() != 2:
        raise ValueError("points must be a (n, P) matrix or a sequence of flat vectors")
    if not 1 <= k <= min(mat.shape):
        raise ValueError(f"k must be between 1 and {min(mat.shape)}, got {k}")
    found = wide_svd(mat, k, anchor=mat[-1] if final is None else final, center=center)  # float64, blockwise
    total = (found.s**2).sum()
    ratios = (found.s[:k] ** 2) / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    return found.vh, ratios
