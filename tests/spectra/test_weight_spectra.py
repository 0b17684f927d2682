"""`lsdb.landscape.weight_spectra` against weightwatcher 0.7.7, NumPy SVDs and random-matrix closed forms."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lsdb.landscape.weight_spectra import (
    analyze_weight_spectra,
    esd_of_layers,
    layer_matrices,
    mp_bulk_edge,
    randomized,
    select_parameters,
)


def heavy_tailed_net(seed: int = 0) -> nn.Module:
    """Two convolutions and three Linear layers; the big Linear layer's entries are Student-t(2)
    scaled (a heavy-tailed ESD), the last one too small for a fit (10 eigenvalues)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.Flatten(), nn.Linear(512, 100),
                        nn.ReLU(), nn.Linear(100, 64), nn.Linear(64, 10))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = net[4].weight
        u = torch.rand(w.shape, generator=gen).clamp_min(1e-6)
        w.mul_(u.pow(-0.5))  # |t| tails: P(factor > s) = s^-2
    return net.eval()


def weightwatcher_details(net: nn.Module) -> object:
    ww = pytest.importorskip("weightwatcher")
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ww.WeightWatcher(model=net).analyze()


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_weightwatcher_layer_by_layer(seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    net = heavy_tailed_net(seed)
    details = weightwatcher_details(net)
    capsys.readouterr()  # weightwatcher prints "SMALL N PL FIT"
    ours = {s.name: s for s in analyze_weight_spectra(net.state_dict(), randomize=False)}
    assert list(ours) == [f"{n}.weight" for n in details["name"]]
    for _, row in details.iterrows():
        s = ours[f"{row['name']}.weight"]
        m = s.metrics
        assert m["num_evals"] == row["num_evals"]
        assert m["log_norm"] == pytest.approx(row["log_norm"], rel=1e-6, abs=1e-6)
        assert m["stable_rank"] == pytest.approx(row["stable_rank"], rel=1e-6, abs=1e-6)
        assert m["log_spectral_norm"] == pytest.approx(row["log_spectral_norm"], rel=1e-6, abs=1e-6)
        if row["num_evals"] < 20:  # weightwatcher's small-sample objective; here: reported, not fitted
            assert s.fit is None and s.status.startswith("too small") and math.isnan(m["alpha"])
            continue
        assert s.status == "ok"
        assert abs(m["alpha"] - row["alpha"]) <= row["sigma"]  # within weightwatcher's own fit's error
        assert m["alpha"] == pytest.approx(row["alpha"], rel=1e-6)  # in fact the same fit
        assert m["xmin"] == pytest.approx(row["xmin"], rel=1e-6)
        assert m["num_pl_spikes"] == row["num_pl_spikes"]
        assert m["alpha_weighted"] == pytest.approx(row["alpha_weighted"], rel=1e-6, abs=1e-6)
        assert m["log_alpha_norm"] == pytest.approx(row["log_alpha_norm"], rel=1e-6, abs=1e-6)
    big = ours["4.weight"].metrics["alpha"]
    assert big < ours["6.weight"].metrics["alpha"]  # the heavy-tailed layer has the smaller alpha


def test_eigenvalues_are_the_squared_singular_values_of_the_weightwatcher_matrices() -> None:
    torch.manual_seed(0)
    dense, wide = torch.randn(30, 12, dtype=torch.float64), torch.randn(7, 25, dtype=torch.float64)
    conv = torch.randn(6, 4, 3, 2, dtype=torch.float64)
    layers = [layer_matrices("d", dense), layer_matrices("w", wide), layer_matrices("c", conv),
              layer_matrices("d2", dense * 2)]  # same shape as "d": one batched solve
    evals = esd_of_layers(layers)
    sv = lambda a: np.sort(np.linalg.svd(a, compute_uv=False) ** 2)  # noqa: E731
    np.testing.assert_allclose(evals[0], sv(dense.numpy()), rtol=1e-10)
    np.testing.assert_allclose(evals[1], sv(wide.numpy()), rtol=1e-10)
    slices = np.concatenate([sv(conv[:, :, i, j].numpy()) * 0.5 for i in range(3) for j in range(2)])
    np.testing.assert_allclose(evals[2], np.sort(slices), rtol=1e-10)  # conv2d_norm halves them
    np.testing.assert_allclose(evals[3], 4 * sv(dense.numpy()), rtol=1e-10)
    assert (layers[2].n, layers[2].m, layers[2].rf, layers[2].num_evals) == (6, 4, 6, 24)
    normalized = esd_of_layers([layer_matrices("d", dense)], normalize=True)[0]
    np.testing.assert_allclose(normalized, sv(dense.numpy()) / 30, rtol=1e-10)


def test_randomization_permutes_entries_with_a_seeded_generator() -> None:
    w = torch.randn(40, 20, dtype=torch.float64)
    layer = layer_matrices("w", w)
    a = randomized(layer, torch.Generator().manual_seed(1))
    b = randomized(layer, torch.Generator().manual_seed(1))
    c = randomized(layer, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.mats, b.mats, rtol=0, atol=0)
    assert not torch.equal(a.mats, c.mats)
    torch.testing.assert_close(a.mats.flatten().sort().values, layer.mats.flatten().sort().values, rtol=0, atol=0)


def test_a_random_matrix_has_no_spikes_a_planted_spike_is_one_and_a_big_entry_is_a_trap() -> None:
    gen = torch.Generator().manual_seed(0)
    n, m = 800, 200
    g = torch.randn(n, m, generator=gen, dtype=torch.float64) * 0.1
    edge, tw = mp_bulk_edge(n, m, 0.01)
    assert edge == pytest.approx(0.01 * (math.sqrt(n) + math.sqrt(m)) ** 2)
    (plain,) = analyze_weight_spectra({"w": g}, generator=torch.Generator().manual_seed(3))
    assert plain.metrics["num_spikes"] == 0 and plain.metrics["num_traps"] == 0
    assert plain.metrics["mp_softrank"] == pytest.approx(1.0, abs=0.05)  # λmax sits at the MP edge
    u, v = torch.randn(n, 1, generator=gen, dtype=torch.float64), torch.randn(1, m, generator=gen, dtype=torch.float64)
    spiked = g + 3.0 * (u / u.norm()) @ (v / v.norm())  # far above the BBP threshold (≈ 0.1·(NM)^¼ ≈ 2)
    (s,) = analyze_weight_spectra({"w": spiked}, generator=torch.Generator().manual_seed(3))
    assert s.metrics["num_spikes"] == 1 and s.metrics["num_traps"] == 0  # a correlation: gone once shuffled
    trapped = g.clone()
    trapped[0, 0] = 5.0  # one huge entry survives the shuffle
    (t,) = analyze_weight_spectra({"w": trapped}, generator=torch.Generator().manual_seed(3))
    assert t.metrics["num_traps"] >= 1 and t.metrics["rand_max_ratio"] == pytest.approx(1.0, abs=0.1)


def test_selection_by_globs_and_its_one_line_errors() -> None:
    names = ["embed.weight", "layers.0.attn.weight", "layers.0.mlp.weight", "layers.1.mlp.weight", "head.weight"]
    assert select_parameters(names, "layers.*.mlp.weight") == ["layers.0.mlp.weight", "layers.1.mlp.weight"]
    assert select_parameters(names, None, "layers.*,embed*") == ["head.weight"]
    assert select_parameters(names, ["head*", "embed*"]) == ["embed.weight", "head.weight"]
    with pytest.raises(ValueError, match="selects no weight matrix; closest names: layers.0.mlp.weight") as err:
        select_parameters(names, "layers.0.mlp.wieght")
    assert "\n" not in str(err.value)


def test_states_without_matrices_and_too_small_layers_are_reported() -> None:
    with pytest.raises(ValueError, match="no 2-D"):
        analyze_weight_spectra({"bias": torch.zeros(5), "step": torch.tensor(3)})
    with pytest.raises(ValueError, match="min_size=8"):
        analyze_weight_spectra({"w": torch.randn(10, 3)}, min_size=8)
    (small,) = analyze_weight_spectra({"w": torch.randn(30, 12)}, randomize=False)
    assert small.fit is None and small.status == "too small: 12 eigenvalues above 1e-05 (a power-law fit needs 20)"
    assert math.isnan(small.metrics["alpha"]) and math.isfinite(small.metrics["log_norm"])
    with pytest.raises(ValueError, match="min_evals"):
        analyze_weight_spectra({"w": torch.randn(30, 12)}, min_evals=1)
    with pytest.raises(ValueError, match="2-, 3- or 4-D"):
        layer_matrices("b", torch.zeros(4))
