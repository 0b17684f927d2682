"""The top singular triplets of a short, wide matrix (a few checkpoints × millions of parameters).

``torch.linalg.svd`` of an (n, P) float64 matrix holds the matrix, its float64 copy, Vᴴ and
LAPACK's workspace: measured about 10 parameter copies per row (`scripts/bench_memory.py`). Here
the rows are read a column block at a time: the Gram matrix G = M Mᵀ (n × n, float64) gives
σ² and U by ``eigh``, and the wanted rows of Vᴴ = Σ⁻¹ Uᵀ M are formed block by block into a tensor
of the caller's dtype. Memory: the output rows and one float64 block. In float64 the Gram route
loses accuracy only for singular values below about 1e-8 of the largest (σ² near rounding), which
carry no variance worth reporting; their vectors are not asked for by the PCA callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Columns per block: 2^18 float64 values a row (2 MiB for each row of the matrix).
BLOCK = 1 << 18


@dataclass(frozen=True)
class WideSvd:
    """σ (n,) descending and U (n, n) in float64, and the top-k right singular vectors (k, P)."""

    s: Tensor
    u: Tensor
    vh: Tensor


def _block(rows: Tensor, start: int, stop: int, anchor: Tensor | None, mean: Tensor | None) -> Tensor:
    work = rows[:, start:stop].to(torch.float64, copy=True)  # never the caller's memory
    if anchor is not None:
        work -= anchor[start:stop].to(torch.float64)
    if mean is not None:
        work -= mean[start:stop]
    return work


def wide_svd(rows: Tensor, k: int, *, anchor: Tensor | None = None, center: bool = False,
             dtype: torch.dtype | None = None, block: int = BLOCK) -> WideSvd:
    """The SVD of M = `rows` − `anchor` (then minus its row mean with `center`), top `k` right vectors
    in `dtype` (the rows' by default), each sign-fixed so that its largest-magnitude entry is positive
    (U's columns flipped with them, so that U Σ Vᴴ stays M)."""
    n, p = rows.shape
    if not 1 <= k <= min(n, p):
        raise ValueError(f"k must be between 1 and {min(n, p)}, got {k}")
    mean = None
    if center:
        mean = torch.zeros(p, dtype=torch.float64, device=rows.device)
        for i in range(0, p, block):
            mean[i:i + block] = _block(rows, i, i + block, anchor, None).mean(dim=0)
    gram = torch.zeros(n, n, dtype=torch.float64, device=rows.device)
    for i in range(0, p, block):
        work = _block(rows, i, i + block, anchor, mean)
        gram.addmm_(work, work.T)
    lam, u = torch.linalg.eigh(gram)
    lam, u = lam.flip(0).clamp_min(0.0), u.flip(1)
    s = lam.sqrt()
    scale = torch.where(s[:k] > 0, 1.0 / s[:k].clamp_min(1e-300), 0.0)
    vh = torch.empty(k, p, dtype=dtype or rows.dtype, device=rows.device)
    peak = torch.zeros(k, dtype=torch.float64, device=rows.device)
    signs = torch.ones(k, dtype=torch.float64, device=rows.device)
    for i in range(0, p, block):
        part = (u[:, :k].T @ _block(rows, i, i + block, anchor, mean)) * scale[:, None]
        vh[:, i:i + block] = part
        big, at = part.abs().max(dim=1)
        better = big > peak
        peak = torch.where(better, big, peak)
        signs = torch.where(better, torch.sign(part.gather(1, at[:, None]).squeeze(1)), signs)
    signs = torch.where(signs == 0, 1.0, signs)
    vh *= signs.to(vh.dtype)[:, None]
    u = u.clone()
    u[:, :k] *= signs
    return WideSvd(s, u, vh)
