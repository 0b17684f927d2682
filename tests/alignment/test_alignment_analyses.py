"""`align`, `merge` and `merge-plane` end to end through a real catalog (lsdb's inline runner and the
`lsdb.Catalog` facade): stored checkpoints, their lineage, the permutation arrays and every renderer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lsdb
from lsdb.analyses.exporting import export_result, plot_result
from lsdb.checkpoints.digests import tensor_digest
from lsdb.data import load_dataset
from lsdb.ingest import add_tensors
from lsdb.landscape.permutations import apply_permutation, permutation_spec, random_permutation
from lsdb.models import build_model
from lsdb.plugins import reset_plugins
from lsdb.runs import make_new_run
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

PLUGIN = ["lsdb_alignment.plugin"]
SMALL = "mlp:widths=[16]"


def _render(catalog, result_id: int, kinds: list[str], folder: Path) -> None:  # type: ignore[no-untyped-def]
    for kind in kinds:
        path = plot_result(catalog, result_id, kind, folder / f"{result_id}-{kind}.png")
        assert path.read_bytes().startswith(b"\x89PNG")


def _arrays(catalog, result_id: int, folder: Path) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    with np.load(export_result(catalog, result_id, "npz", folder / f"{result_id}.npz")) as data:
        return {k: data[k] for k in data.files}


def _state(model: str, seed: int) -> dict[str, torch.Tensor]:
    data = load_dataset("digits")
    net = build_model(model, data.input_shape, data.num_classes, seed=seed)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_align_stores_the_permuted_network_with_its_lineage_and_permutations(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
        b = add_model_checkpoint(catalog, "b", SMALL, "digits", seed=1)
        result = run_inline(catalog, "align", [a.id, b.id], {"steps": 5})
        assert len(result.produced) == 1
        stored = catalog.checkpoints.get(result.produced[0])
        assert stored.produced_by == result.id and stored.label == f"aligned to a@#{a.id} (weights)"
        spec = permutation_spec(build_model(SMALL, (64,), 10), torch.zeros(2, 64))
        arrays = _arrays(catalog, result.id, tmp_path)
        perm = torch.as_tensor(arrays["perm_1"])
        assert sorted(perm.tolist()) == list(range(16))
        assert stored.tensor_digest == tensor_digest(apply_permutation(spec, {"1": perm}, _state(SMALL, 1)))
        s = result.scalars
        assert s["function_error"] < 1e-5 and s["objective"] >= s["objective_start"] and s["n_groups"] == 1
        assert np.all(np.diff(arrays["objective"]) >= 0)
        assert {"naive_barrier", "aligned_barrier", "repaired_barrier"} <= set(s)
        again = run_inline(catalog, "align", [a.id, b.id], {"steps": 5})
        assert again.id == result.id  # the alignment is cached as its own result and reused
        activations = run_inline(catalog, "align", [a.id, b.id], {"method": "activations", "steps": 0})
        assert activations.scalars["function_error"] < 1e-5 and "naive_barrier" not in activations.scalars
        _render(catalog, result.id, ["default", "objective"], tmp_path)


def test_aligning_a_permuted_copy_gives_back_the_network_and_no_barrier(tmp_path: Path) -> None:
    model = "simple_cnn:channels=[6,8]"
    dataset = "digits:image=true"
    data = load_dataset(dataset)
    net = build_model(model, data.input_shape, data.num_classes, seed=0)
    original = {k: v.detach().clone() for k, v in net.state_dict().items()}
    spec = permutation_spec(net, data.train[0][:2])
    copy = apply_permutation(spec, random_permutation(spec, torch.Generator().manual_seed(5)), original)
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        a = add_model_checkpoint(catalog, "a", model, dataset, seed=0)
        b, _ = add_tensors(catalog, make_new_run("copy", model=model, dataset=dataset), copy)
        result = run_inline(catalog, "align", [a.id, b.id], {"steps": 3})
        assert catalog.checkpoints.get(result.produced[0]).tensor_digest == a.tensor_digest
        assert result.scalars["aligned_barrier"] == 0.0 and result.scalars["moved_fraction"] > 0.5


def test_merge_methods_store_their_merge_and_merge_plane_places_them(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        base = add_model_checkpoint(catalog, "base", SMALL, "digits", seed=0)
        a = add_model_checkpoint(catalog, "ft1", SMALL, "digits", seed=1)
        b = add_model_checkpoint(catalog, "ft2", SMALL, "digits", seed=2)
        ids = {}
        for method in ("average", "task-arithmetic", "ties", "slerp"):
            result = run_inline(catalog, "merge", [a.id, b.id, f"base={base.id}"], {"method": method})
            stored = catalog.checkpoints.get(result.produced[0])
            assert stored.produced_by == result.id and stored.label == f"merge {method}"
            ids[method] = stored.id
        ta = _merged_expectation(base, a, b)
        assert catalog.checkpoints.get(ids["task-arithmetic"]).tensor_digest == tensor_digest(ta)
        aligned = run_inline(catalog, "merge", [a.id, b.id], {"method": "average", "align": "weights"})
        assert aligned.scalars["n_merged"] == 2
        plane = run_inline(catalog, "merge-plane", [base.id, a.id, b.id, f"merged={ids['task-arithmetic']}"],
                           {"xnum": 4, "ynum": 3, "scale": 1.0, "first_classes": [0, 1, 2, 3, 4],
                            "second_classes": [5, 6, 7, 8, 9]})
        arrays = _arrays(catalog, plane.id, tmp_path)
        assert arrays["test_loss"].shape == (3, 4) and arrays["test_first_acc"].shape == (3, 4)
        # average at (½, ½), task arithmetic λ=1 at (1, 1), and the stored task-arithmetic merge with it
        np.testing.assert_allclose(arrays["merged_x"][[0, 1, 4]], [0.5, 1.0, 1.0], atol=1e-6)
        np.testing.assert_allclose(arrays["merged_y"][[0, 1, 4]], [0.5, 1.0, 1.0], atol=1e-6)
        assert arrays["merged_residual"][0] < 1e-3 and arrays["merged_residual"][2] > 0  # TIES leaves the plane
        assert plane.scalars["average_test_loss"] > 0
        _render(catalog, plane.id, ["default", "error", "first", "second"], tmp_path)
        _render(catalog, aligned.id, ["default"], tmp_path)


def _merged_expectation(base, a, b) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    sb, sa, s2 = _state(SMALL, 0), _state(SMALL, 1), _state(SMALL, 2)
    return {k: (sb[k].double() + (sa[k].double() - sb[k].double()) + (s2[k].double() - sb[k].double())).float()
            for k in sb}


def test_the_facade_runs_align_on_trained_networks_and_interpolates_to_the_aligned_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSDB_EXTRA_PLUGINS", "lsdb_alignment.plugin")
    reset_plugins()
    cat = lsdb.open_catalog(str(tmp_path / "c.sqlite"), tmp_path / "store")
    try:
        for seed in (0, 1):
            cat.train(f"s{seed}", model=SMALL, dataset="digits", epochs=2, seed=seed, lr=0.1)
        result = cat.run("align", "s0:last", "s1:last", method="weights", steps=5)
        produced = result.record.produced
        assert len(produced) == 1 and produced[0] in [c.id for c in cat.checkpoints("s1")]
        naive = cat.run("interpolate", "s0:last", "s1:last", steps=5, splits=["train"])
        aligned = cat.run("interpolate", "s0:last", str(produced[0]), steps=5, splits=["train"])
        assert aligned.scalars["loss_barrier"] <= naive.scalars["loss_barrier"] + 1e-6
        assert aligned.scalars["end_train_loss"] == pytest.approx(naive.scalars["end_train_loss"], rel=1e-5)
        merged = cat.run("merge", "s0:last", "s1:last", method="average", align="weights")
        assert merged.scalars["merged_test_acc"] > 0.1
    finally:
        cat.close()
        reset_plugins()


def test_interpolate_with_align_runs_modulo_permutation(tmp_path: Path) -> None:
    data = load_dataset("digits")
    net = build_model(SMALL, data.input_shape, data.num_classes, seed=0)
    original = {k: v.detach().clone() for k, v in net.state_dict().items()}
    spec = permutation_spec(net, data.train[0][:2])
    copy = apply_permutation(spec, random_permutation(spec, torch.Generator().manual_seed(5)), original)
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
        b, _ = add_tensors(catalog, make_new_run("copy", model=SMALL, dataset="digits"), copy)
        params = {"steps": 5, "splits": ["train"], "alpha_min": 0.0, "alpha_max": 1.0}
        naive = run_inline(catalog, "interpolate", [a.id, b.id], params)
        for method in ("weights", "activations"):
            aligned = run_inline(catalog, "interpolate", [a.id, b.id], {**params, "align": method})
            loss = _arrays(catalog, aligned.id, tmp_path)["train_loss"]
            np.testing.assert_allclose(loss, loss[0], rtol=1e-6)  # every point is the network itself
            assert aligned.scalars["loss_barrier"] < 1e-6
        assert np.ptp(_arrays(catalog, naive.id, tmp_path)["train_loss"]) > 1e-3  # the naive line is not
        assert naive.scalars["end_train_loss"] == pytest.approx(aligned.scalars["end_train_loss"], rel=1e-6)
