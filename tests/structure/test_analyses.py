"""The five analyses end to end through `lsdb.testing.run_inline`, and every renderer on their results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from lsdb_structure.renderers import RENDERERS
from matplotlib.figure import Figure
from safetensors.torch import load

from lsdb.analyses.runner import load_view
from lsdb.catalog import CatalogDB
from lsdb.errors import BadInput
from lsdb.plotting import save_figure
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

MODEL = "mlp:widths=[8]"
FAST = {"batch_size": 0, "lr": 0.1}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogDB]:
    """Three optima (random initializations: the analyses' mechanics do not need trained nets) and a
    three-checkpoint trajectory, all of one architecture."""
    with temp_catalog(tmp_path_factory.mktemp("structure"), plugins=["lsdb_structure.plugin"]) as cat:
        for i in range(3):
            add_model_checkpoint(cat, f"r{i}", MODEL, "digits", seed=i)
        for step in range(3):
            add_model_checkpoint(cat, "traj", MODEL, "digits", seed=10 + step, step=step)
        yield cat


def render_all(catalog: CatalogDB, result_id: int, analysis: str, folder: Path) -> None:
    view = load_view(catalog, catalog.results.get(result_id))
    for name, renderer in ((n, r) for a, n, r in RENDERERS if a == analysis):
        fig = renderer(view)
        assert isinstance(fig, Figure) and fig.axes
        path = save_figure(fig, folder / f"{analysis}-{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def weights(catalog: CatalogDB, checkpoint) -> torch.Tensor:  # type: ignore[no-untyped-def]
    tensors = load(catalog.objects.read_bytes(checkpoint.blob_digest))
    return torch.cat([tensors[k].double().ravel() for k in ("1.weight", "1.bias", "3.weight", "3.bias")])


def test_tunnel_stores_its_knots_in_their_hyperplanes(catalog: CatalogDB, tmp_path: Path) -> None:
    result = run_inline(catalog, "tunnel", ["r0:last", "r1:last"], {"pieces": 3, "steps": 15, "per_segment": 2, **FAST})
    view = load_view(catalog, result)
    a = view.arrays
    assert a["t"].shape == (7,) and a["deviation_cosine"].shape == (2, 2) and a["knot_loss_history"].shape == (2, 15)
    for k in (2, 4):  # the optimized knots are lower than the straight line at the same t
        assert a["path_train_loss"][k] < a["line_train_loss"][k]
    assert a["path_train_loss"][0] == pytest.approx(a["line_train_loss"][0])
    for key in ("path_loss_barrier", "line_loss_barrier", "path_error_barrier", "path_test_max_loss", "distance"):
        assert key in result.scalars
    knots = [c for c in catalog.checkpoints.list("r0") if c.produced_by == result.id]
    assert sorted(c.label for c in knots) == ["tunnel knot 1/3", "tunnel knot 2/3"]
    ends = [weights(catalog, c) for c in (catalog.checkpoints.list("r0")[0], catalog.checkpoints.list("r1")[0])]
    normal = (ends[1] - ends[0]) / (ends[1] - ends[0]).norm()
    for c in knots:
        t = int(c.label.split()[-1][0]) / 3
        offset = float((weights(catalog, c) - (ends[0] + t * (ends[1] - ends[0]))) @ normal)
        assert abs(offset) < 1e-4 * float((ends[1] - ends[0]).norm())  # float32 analysis; float64 in test_tunnels
    render_all(catalog, result.id, "tunnel", tmp_path)


def test_tunnel_whole_path_option_records_its_history(catalog: CatalogDB) -> None:
    result = run_inline(catalog, "tunnel", ["r0:last", "r2:last"],
                        {"pieces": 2, "steps": 3, "method": "path", "path_steps": 4, "splits": ["train"], **FAST})
    a = load_view(catalog, result).arrays
    assert a["path_loss_history"].shape == (4,) and "path_test_loss" not in a
    with pytest.raises(BadInput, match="same weights"):
        run_inline(catalog, "tunnel", ["r0:last", "r0:last"])


def test_tunnel_optimizes_batchnorm_nets_with_batch_statistics(catalog: CatalogDB) -> None:
    spec = "tests.plugins.surfaces_factories:bn_mlp"
    for i in range(2):
        add_model_checkpoint(catalog, f"bn{i}", spec, "digits", seed=i)
    result = run_inline(catalog, "tunnel", ["bn0:last", "bn1:last"],
                        {"pieces": 2, "steps": 4, "per_segment": 2, "splits": ["train"], **FAST})
    view = load_view(catalog, result)
    assert view.attrs["bn"] == "recompute" and np.isfinite(view.arrays["path_train_loss"]).all()
    (knot,) = [c for c in catalog.checkpoints.list("bn0") if c.produced_by == result.id]
    tensors = load(catalog.objects.read_bytes(knot.blob_digest))
    assert "2.running_mean" in tensors and tensors["2.num_batches_tracked"].dtype == torch.int64


def test_mconnector_lowers_the_simplex_for_three_and_four_optima(catalog: CatalogDB, tmp_path: Path) -> None:
    three = run_inline(catalog, "mconnector", ["r0:last", "r1:last", "r2:last"],
                       {"resolution": 2, "steps": 8, "splits": ["train"], **FAST})
    a = load_view(catalog, three).arrays
    assert a["weights"].shape == (6, 3) and int(a["vertex"].sum()) == 3
    inner = ~a["vertex"]
    assert bool((a["connector_train_loss"][inner] < a["hull_train_loss"][inner]).all())
    assert np.allclose(a["connector_train_loss"][~inner], a["hull_train_loss"][~inner])
    assert three.scalars["connector_max_loss"] <= three.scalars["hull_max_loss"] + 1e-6
    render_all(catalog, three.id, "mconnector", tmp_path)
    four = run_inline(catalog, "mconnector", ["r0:last", "r1:last", "r2:last", "traj:0"],
                      {"resolution": 2, "steps": 2, "splits": ["test"], "save_points": True, **FAST})
    assert four.scalars["m"] == 4 and four.scalars["n_points"] == 10
    assert len([c for c in catalog.checkpoints.list("r0") if c.produced_by == four.id]) == 6
    render_all(catalog, four.id, "mconnector", tmp_path)


@pytest.mark.parametrize("norm", ["none", "filter"])
def test_tunnel_width_profiles_cross_the_threshold_at_the_width(catalog: CatalogDB, tmp_path: Path, norm: str) -> None:
    params = {"directions": 4, "grid": 8, "iters": 8, "threshold": 0.5, "max_radius": 40.0, "norm": norm}
    result = run_inline(catalog, "tunnel-width", ["r0:last"], params)
    a, s = load_view(catalog, result).arrays, result.scalars
    assert s["threshold"] == pytest.approx(s["center_loss"] + 0.5) and s["n_censored"] == 0
    for width, profile in zip(a["widths"], a["profiles"], strict=True):
        below = a["radii"] < width - a["radii"][0]
        assert bool((profile[below] <= s["threshold"]).all()) and profile[~below].max() > s["threshold"]
    assert s["width_mean"] == pytest.approx(float(np.mean(a["widths"])))
    if norm == "none":
        assert np.allclose(a["direction_norms"], 1.0, atol=1e-5)
    render_all(catalog, result.id, "tunnel-width", tmp_path)


def test_wedge_sim_runs_its_three_experiments_without_inputs(catalog: CatalogDB, tmp_path: Path) -> None:
    first = run_inline(catalog, "wedge-sim", [], {"experiment": 1, "dim": 20, "n": 4, "trials": 3, "steps": 20})
    assert first.scalars["threshold_dim"] == 4 and first.scalars["mean_final_loss_below_n"] > 1e-3
    assert first.scalars["threshold_reached"] == 1.0
    # gradient descent with one step reaches zero loss nowhere: said so, not silently dropped
    gd = run_inline(catalog, "wedge-sim", [], {"experiment": 1, "dim": 20, "n": 4, "trials": 3, "steps": 1,
                                               "method": "gd", "lr": 0.01})
    assert gd.scalars["threshold_reached"] == 0.0 and "threshold_dim" not in gd.scalars
    assert load_view(catalog, first).arrays["final_loss"].shape == (8, 3)
    second = run_inline(catalog, "wedge-sim", [], {"experiment": 2, "dim": 20, "n": 3, "pieces": 6, "steps": 60})
    assert second.scalars["path_max_loss"] < second.scalars["line_max_loss"]
    third = run_inline(catalog, "wedge-sim", [], {"experiment": 3, "dim": 200, "n": 20, "directions": 10})
    assert third.scalars["width_mean"] == pytest.approx(third.scalars["predicted_width"], rel=0.15)
    for result in (first, second, third):
        render_all(catalog, result.id, "wedge-sim", tmp_path / str(result.id))
    with pytest.raises(BadInput, match="dim >= 2n"):
        run_inline(catalog, "wedge-sim", [], {"experiment": 2, "dim": 5, "n": 3})


def test_minima_map_embeds_checkpoints_and_trajectories(catalog: CatalogDB, tmp_path: Path) -> None:
    result = run_inline(catalog, "minima-map", ["r0:last", "r1:last", "r2:last", "traj"], {"method": "pca"})
    view = load_view(catalog, result)
    a = view.arrays
    assert a["coords"].shape == (6, 2) and a["group"].tolist() == [0, 0, 0, 1, 1, 1]
    assert a["step"].tolist()[3:] == [0, 1, 2] and view.attrs["method"] == "pca"
    assert np.allclose(a["coords"], a["pca_coords"]) and a["explained_variance_ratio"].sum() <= 1 + 1e-9
    assert bool(((a["test_acc"] >= 0) & (a["test_acc"] <= 1)).all()) and result.scalars["n_points"] == 6
    render_all(catalog, result.id, "minima-map", tmp_path)
    tsne = run_inline(catalog, "minima-map", ["r0:last", "r1:last", "r2:last", "traj"], {"method": "auto"})
    view = load_view(catalog, tsne)
    assert view.attrs["method"] == "tsne" and view.arrays["coords"].shape == (6, 2)
    assert np.isfinite(view.arrays["coords"]).all()
