"""`lsdb.landscape.ensembles` on hand-computed cases (Guo et al. 2017 ECE, mean-of-softmax ensembles)."""

from __future__ import annotations

import math

import pytest
import torch

from lsdb.landscape.ensembles import (
    calibration_bins,
    disagreement_matrix,
    ensemble_metrics,
    ensemble_probabilities,
    error_rate,
    expected_calibration_error,
    growing_ensemble,
    mean_disagreement,
    negative_log_likelihood,
)


def _probs(seed: int, n: int = 40, c: int = 4) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).softmax(dim=1)


def test_an_ensemble_of_identical_members_equals_the_single_model() -> None:
    p = _probs(0)
    y = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(1))
    single = ensemble_metrics(p, y)
    for m in (2, 3, 5):
        members = p.expand(m, -1, -1)
        torch.testing.assert_close(ensemble_probabilities(members), p, rtol=1e-15, atol=0)
        grown = growing_ensemble(members, y)
        for metrics in grown:
            assert metrics.error == single.error
            assert metrics.nll == pytest.approx(single.nll, rel=1e-14)
            assert metrics.ece == pytest.approx(single.ece, rel=1e-12, abs=1e-15)
        assert mean_disagreement(members) == 0.0
    assert growing_ensemble(p.expand(2, -1, -1), y)[-1] == single  # two copies: bit for bit


def test_error_and_nll_by_hand() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.5, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    assert error_rate(p, y) == pytest.approx(2 / 3)
    tiny = torch.finfo(torch.float64).tiny
    assert negative_log_likelihood(p, y) == pytest.approx(-(math.log(0.7) + math.log(0.3) + math.log(tiny)) / 3)


def test_ece_uses_equal_width_bins_as_guo_et_al() -> None:
    """ECE = Σ_m |B_m|/n |acc(B_m) − conf(B_m)| over bins ((m−1)/M, m/M]."""
    p = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45], [0.5, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 0, 1])
    conf, acc, count = calibration_bins(p, y, bins=2)
    assert count.tolist() == [1.0, 4.0]  # 0.5 falls in (0, 0.5]
    torch.testing.assert_close(conf, torch.tensor([0.5, (0.95 + 0.9 + 0.6 + 0.55) / 4], dtype=torch.float64))
    torch.testing.assert_close(acc, torch.tensor([0.0, 0.75], dtype=torch.float64))
    expected = 1 / 5 * abs(0.0 - 0.5) + 4 / 5 * abs(0.75 - 0.75)
    assert expected_calibration_error(p, y, bins=2) == pytest.approx(expected)
    _, _, count15 = calibration_bins(p, y)
    assert torch.isnan(calibration_bins(p, y)[0][0]) and count15.sum() == 5  # empty bins are NaN, not 0


def test_disagreement_counts_differing_arg_max_predictions() -> None:
    a = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    b = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]], dtype=torch.float64)
    d = disagreement_matrix(torch.stack([a, b, a]))
    torch.testing.assert_close(d, torch.tensor([[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]], dtype=torch.float64))
    assert mean_disagreement(torch.stack([a, b, a])) == pytest.approx(2 / 6)


def test_averaging_diverse_members_can_beat_each_of_them() -> None:
    """Two members each wrong on a different example, right with more confidence elsewhere."""
    a = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]], dtype=torch.float64)
    b = torch.tensor([[0.45, 0.55], [0.9, 0.1], [0.8, 0.2]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0])
    grown = growing_ensemble(torch.stack([a, b]), y)
    assert grown[0].error == pytest.approx(1 / 3) and grown[1].error == 0.0
