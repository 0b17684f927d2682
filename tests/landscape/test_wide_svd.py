"""`wide_svd` (Gram matrix, a block of columns at a time) against LAPACK's SVD of the whole matrix."""

from __future__ import annotations

import pytest
import torch

from lsdb.landscape.wide_svd import wide_svd


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("block", [7, 1 << 18])
def test_blocks_give_the_svd_of_the_whole_matrix(center: bool, block: int) -> None:
    gen = torch.Generator().manual_seed(0)
    rows = torch.cumsum(torch.randn(6, 50, generator=gen, dtype=torch.float64), dim=0).float()
    anchor = rows[-1]
    m = rows.double() - anchor.double()
    if center:
        m = m - m.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    kept = rows.clone()
    found = wide_svd(rows, 3, anchor=anchor, center=center, block=block)
    assert torch.equal(rows, kept)  # the caller's rows are never written
    assert torch.allclose(found.s[:5], s[:5], rtol=1e-9, atol=1e-9)
    assert found.vh.dtype == torch.float32 and found.vh.shape == (3, 50)
    for j in range(3):  # the same vectors up to sign, and the sign rule: largest-magnitude entry positive
        assert torch.allclose(found.vh[j].double().abs(), vh[j].abs(), atol=1e-6)
        assert float(found.vh[j][found.vh[j].abs().argmax()]) > 0
    rebuilt = (found.u[:, :3] * found.s[:3]) @ found.vh.double()  # U Σ Vᴴ still equals M (rank 3 part)
    best = (torch.linalg.svd(m, full_matrices=False).U[:, :3] * s[:3]) @ vh[:3]
    assert torch.allclose(rebuilt, best, atol=1e-5)
