"""The evaluator's private model copy: every parameter and floating buffer a view of one vector."""

from __future__ import annotations

import torch
from torch import nn

from lsdb.landscape.flat_model import FlatModel


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.norm = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 7, bias=False)
        self.head.weight = self.embed.weight  # tied, as GPT-2's head and embedding

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.embed(idx)))


def test_the_copy_lives_in_the_flat_vector_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = _Tied().eval()
    with torch.no_grad():
        model.norm.running_mean.normal_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flat = FlatModel(model, torch.device("cpu"), torch.float64)
    storage = flat.flat.untyped_storage().data_ptr()
    tensors = [*flat.module.parameters(), *(b for b in flat.module.buffers() if b.is_floating_point())]
    assert tensors and all(t.untyped_storage().data_ptr() == storage for t in tensors)
    assert flat.module.head.weight is flat.module.embed.weight  # the tie survives
    assert all(p.dtype == torch.float64 and not p.requires_grad for p in flat.module.parameters())
    idx = torch.tensor([1, 5, 6])
    with torch.no_grad():
        torch.testing.assert_close(flat.module(idx), model.double()(idx))
        flat.load(torch.zeros(flat.numel, dtype=torch.float64))
        assert float(flat.module(idx).abs().sum()) == 0.0
    for k, v in model.float().state_dict().items():  # the caller's model is untouched
        torch.testing.assert_close(v, before[k])
    assert flat.module.norm.num_batches_tracked is not model.norm.num_batches_tracked


def test_a_16_bit_point_formed_in_slices_equals_one_addmv_bit_for_bit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import lsdb.landscape.flat_model as fm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 40), nn.Linear(40, 5)).eval()
    for dtype in (torch.bfloat16, torch.float16):
        flat = FlatModel(model, torch.device("cpu"), dtype)
        n = flat.numel
        dirs = torch.randn(2, n).to(dtype)
        monkeypatch.setattr(fm, "LOW_PRECISION_SLICE", 97)  # 15 slices, the last one short
        for c in torch.randn(6, 2).to(dtype):
            flat.load_combination(flat.base, dirs.t(), c)
            assert torch.equal(flat.flat, torch.addmv(flat.base, dirs.t(), c))
            assert torch.equal(next(flat.module.parameters()).reshape(-1), flat.flat[:40 * 30])  # still views
