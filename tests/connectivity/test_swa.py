"""`lsdb.landscape.swa` against ``torch.optim.swa_utils`` and the papers' schedules (Izmailov et al. 2018)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel
from torch.optim.swa_utils import update_bn as torch_update_bn

from lsdb.landscape.swa import (
    SwaAverage,
    average_states,
    fge_cyclic_lr,
    snapshot_cosine_lr,
    swa_cyclic_lr,
    swalr_lr,
    update_bn,
)


def _bn_net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))


def _sequence(n: int = 4) -> list[nn.Module]:
    """Networks as SGD would visit them: perturbed weights and running statistics of their own."""
    gen = torch.Generator().manual_seed(0)
    base = _bn_net()
    nets = []
    for _ in range(n):
        net = copy.deepcopy(base)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=gen))
        net.train()
        net(torch.randn(20, 5, generator=gen))
        nets.append(net)
    return nets


def test_average_and_bn_update_equal_swa_utils_bit_for_bit() -> None:
    nets = _sequence()
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(1))
    reference = AveragedModel(nets[0])
    ours = SwaAverage()
    for net in nets:
        reference.update_parameters(net)
        ours.update(net)
    torch_update_bn(list(x.split(16)), reference)
    averaged = _bn_net()
    averaged.load_state_dict(ours.state_dict())
    update_bn(averaged, x.split(16))
    assert ours.n_averaged == int(reference.n_averaged) == 4
    expected = reference.module.state_dict()
    for key, value in averaged.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_averaging_state_dicts_equals_averaging_modules() -> None:
    nets = _sequence(3)
    names = [n for n, _ in nets[0].named_parameters()]
    from_states = average_states([n.state_dict() for n in nets], names)
    swa = SwaAverage()
    for net in nets:
        swa.update(net)
    for key, value in swa.state_dict().items():
        assert torch.equal(from_states[key], value), key
    assert torch.equal(from_states["1.running_mean"], nets[-1].state_dict()["1.running_mean"])  # buffers: the last


def test_update_bn_needs_batches_only_when_there_is_batchnorm() -> None:
    with pytest.raises(ValueError, match="no training batch"):
        update_bn(_bn_net(), [])
    plain = nn.Sequential(nn.Linear(5, 3))
    update_bn(plain, [])  # nothing to recompute


def test_swa_cyclic_schedule_falls_from_lr_max_to_lr_min_within_each_cycle() -> None:
    """Izmailov et al. 2018, eq. (1): α(i) = (1 − t(i)) α1 + t(i) α2, t(i) = (mod(i − 1, c) + 1) / c."""
    lrs = [swa_cyclic_lr(s, 4, 0.1, 0.02) for s in range(8)]
    assert lrs[3] == lrs[7] == pytest.approx(0.02, abs=1e-15)  # each cycle ends at α2: where SWA averages
    assert lrs[0] == lrs[4] == pytest.approx(0.75 * 0.1 + 0.25 * 0.02)
    assert all(a > b for a, b in zip(lrs[:3], lrs[1:4], strict=True))


def test_fge_schedule_reaches_lr_min_at_mid_cycle_and_lr_max_at_its_end() -> None:
    """Garipov et al. 2018, §5: α1 → α2 → α1 over c iterations; the snapshot step runs at α2."""
    c = 8
    lrs = [fge_cyclic_lr(s, c, 0.05, 5e-4) for s in range(2 * c)]
    assert lrs[c // 2 - 1] == pytest.approx(5e-4, abs=1e-15) and lrs[c - 1] == pytest.approx(0.05)
    assert min(lrs) == lrs[c // 2 - 1] == lrs[c + c // 2 - 1]
    assert lrs[0] == pytest.approx((1 - 2 / c) * 0.05 + 2 / c * 5e-4)


def test_snapshot_schedule_restarts_a_cosine_every_cycle() -> None:
    """Huang et al. 2017, eq. (2)."""
    lrs = [snapshot_cosine_lr(s, 5, 0.2) for s in range(10)]
    assert lrs[0] == lrs[5] == 0.2 and lrs[4] == pytest.approx(0.1 * (1 + torch.cos(torch.tensor(0.8 * torch.pi))))
    assert all(a > b for a, b in zip(lrs[:4], lrs[1:5], strict=True))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_anneal_equals_torch_swalr(strategy: str) -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    scheduler = SWALR(opt, swa_lr=0.01, anneal_epochs=5, anneal_strategy=strategy)  # type: ignore[arg-type]
    for step in range(9):
        assert swalr_lr(step, 5, 0.1, 0.01, strategy) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        scheduler.step()
