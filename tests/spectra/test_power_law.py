"""`fit_power_law` against the `powerlaw` package (2.0.0, Clauset–Shalizi–Newman) and against the MLE's closed form."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lsdb.landscape.weight_spectra import fit_power_law

powerlaw = pytest.importorskip("powerlaw")


def pareto_with_body(seed: int, alpha: float, n_tail: int = 400, n_body: int = 300) -> np.ndarray:
    """A Pareto(alpha) tail above 0.5 on top of a uniform body below it: the shape of an ESD."""
    rng = np.random.default_rng(seed)
    tail = 0.5 * (1.0 - rng.random(n_tail)) ** (-1.0 / (alpha - 1.0))
    body = 0.01 + 0.49 * rng.random(n_body)
    return np.concatenate([tail, body])


def reference(data: np.ndarray) -> object:
    """`powerlaw.Fit` with alpha allowed in (1, 1000]: powerlaw 2.0 bounds alpha to [0, 3] by default
    (`Power_Law.DEFAULT_PARAMETER_RANGES`) and marks fits above 3 invalid, a bound that Clauset et al.
    and weightwatcher do not have (heavy-tailed layers have alphas of 2 to 6 and more)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return powerlaw.Fit(data, verbose=False, parameter_ranges={"alpha": [1.0, 1000.0]})


@pytest.mark.parametrize(("seed", "alpha"), [(0, 2.5), (1, 3.0), (2, 4.5), (3, 2.1), (4, 6.0)])
def test_xmin_alpha_D_and_sigma_equal_the_powerlaw_package(seed: int, alpha: float) -> None:
    data = pareto_with_body(seed, alpha)
    ours, ref = fit_power_law(data), reference(data)
    assert ours.xmin == ref.xmin
    assert ours.alpha == pytest.approx(ref.alpha, rel=1e-9)  # above 3 powerlaw maximizes numerically
    assert ours.D == pytest.approx(ref.D, rel=1e-9)
    assert ours.sigma == pytest.approx(ref.sigma, rel=1e-12)
    assert ours.n_tail == int((data >= ref.xmin).sum())
    assert abs(ours.alpha - alpha) < 5 * ours.sigma  # and it recovers the exponent it was drawn with


def test_below_alpha_3_the_powerlaw_defaults_agree_too() -> None:
    data = pareto_with_body(0, 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(data, verbose=False)
    ours = fit_power_law(data)
    assert ours.xmin == ref.xmin and ours.alpha == pytest.approx(ref.alpha, rel=1e-12) and ours.alpha < 3


def test_every_candidate_has_the_closed_form_mle_and_the_ks_distance() -> None:
    data = np.sort(pareto_with_body(7, 3.0, n_tail=60, n_body=20))
    fit = fit_power_law(data)
    for j in (0, 10, 40):
        xmin = fit.xmins[j]
        tail = data[data >= xmin]
        alpha = 1 + len(tail) / np.sum(np.log(tail / xmin))  # CSN 2009, Eq. (3.1)
        assert fit.alphas[j] == pytest.approx(alpha, rel=1e-12)
        cdf = 1 - (tail / xmin) ** (1 - alpha)
        assert fit.distances[j] == pytest.approx(np.max(np.abs(np.arange(len(tail)) / len(tail) - cdf)), rel=1e-12)
    assert fit.D == fit.distances.min() and fit.sigma == pytest.approx((fit.alpha - 1) / math.sqrt(fit.n_tail))


def test_a_fit_chunked_over_candidates_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import lsdb.landscape.weight_spectra as ws

    data = pareto_with_body(11, 2.7)
    whole = fit_power_law(data)
    monkeypatch.setattr(ws, "_FIT_CHUNK_BYTES", 8 * len(data) * 3)  # three candidates per chunk
    chunked = fit_power_law(data)
    np.testing.assert_array_equal(whole.distances, chunked.distances)
    assert whole.xmin == chunked.xmin


@pytest.mark.parametrize(("values", "message"), [
    ([1.0, 1.0, 1.0], "at least 2 distinct"),
    ([0.0, 1.0, 2.0], "positive"),
    ([1.0, np.nan, 2.0], "finite"),
    ([], "at least 2 distinct"),
])
def test_bad_values_are_refused(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_power_law(np.asarray(values))
