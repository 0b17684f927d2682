"""``-p align=weights|activations`` on interpolate, curve, plane, tunnel, mconnector and ensemble, through a
real catalog: with it a network and a copy of it with permuted hidden units are one network, and an
input's permuted copy gives the very result the input does; without it they are different points.

The networks have one hidden layer, so weight matching is a single linear assignment: its optimum does
not depend on how the input's units happen to be ordered, and aligning ``P(b)`` to `a` gives bit for bit
what aligning `b` does (Ainsworth et al. 2023, Alg. 1 with one permutation group).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from lsdb.analyses.runner import load_view
from lsdb.catalog import CatalogDB, CheckpointRecord, ResultRecord
from lsdb.data import load_dataset
from lsdb.errors import BadInput
from lsdb.ingest import add_tensors
from lsdb.landscape.permutations import apply_permutation, permutation_spec, random_permutation
from lsdb.models import build_model
from lsdb.runs import make_new_run
from lsdb.testing import run_inline, temp_catalog

MODEL, DATASET = "mlp:widths=[16]", "digits"


@dataclass(frozen=True)
class Nets:
    """Three independent networks and a copy of each with its hidden units randomly permuted."""

    catalog: CatalogDB
    a: CheckpointRecord
    b: CheckpointRecord
    c: CheckpointRecord
    pa: CheckpointRecord
    pb: CheckpointRecord
    pc: CheckpointRecord


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nets]:
    torch.set_num_threads(1)
    data = load_dataset(DATASET)
    with temp_catalog(tmp_path_factory.mktemp("align-everywhere")) as catalog:
        added = {}
        for i, name in enumerate("abc"):
            net = build_model(MODEL, data.input_shape, data.num_classes, seed=i)
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            spec = permutation_spec(net, data.train[0][:2])
            copy = apply_permutation(spec, random_permutation(spec, torch.Generator().manual_seed(10 + i)), state)
            assert any(not torch.equal(copy[k], state[k]) for k in state)  # the copy is another point
            added[name], _ = add_tensors(catalog, make_new_run(name, model=MODEL, dataset=DATASET), state)
            added[f"p{name}"], _ = add_tensors(catalog, make_new_run(f"p{name}", model=MODEL, dataset=DATASET), copy)
        yield Nets(catalog, **added)


def _run(nets: Nets, analysis: str, inputs: list[CheckpointRecord], params: dict[str, object]) -> ResultRecord:
    return run_inline(nets.catalog, analysis, [c.id for c in inputs], params)


def _arrays(nets: Nets, result: ResultRecord) -> dict[str, np.ndarray]:
    return load_view(nets.catalog, result).arrays


def _assert_same(nets: Nets, one: ResultRecord, other: ResultRecord) -> None:
    """Two results of the same analysis agree in every array and scalar (to float tolerance)."""
    x, y = _arrays(nets, one), _arrays(nets, other)
    assert set(x) == set(y) and set(one.scalars) == set(other.scalars)
    for key in x:
        np.testing.assert_allclose(x[key], y[key], rtol=1e-6, atol=1e-9, err_msg=key)
    for key, value in one.scalars.items():
        assert value == pytest.approx(other.scalars[key], rel=1e-6, abs=1e-9), key


def test_interpolate_sees_a_permuted_copy_as_the_network_itself(nets: Nets) -> None:
    params = {"steps": 5, "splits": ["train"], "alpha_min": 0.0, "alpha_max": 1.0}
    naive = _run(nets, "interpolate", [nets.a, nets.pa], params)
    assert np.ptp(_arrays(nets, naive)["train_loss"]) > 1e-3
    for method in ("weights", "activations"):
        aligned = _run(nets, "interpolate", [nets.a, nets.pa], {**params, "align": method})
        loss = _arrays(nets, aligned)["train_loss"]
        np.testing.assert_allclose(loss, loss[0], rtol=1e-6)
        assert aligned.scalars["loss_barrier"] < 1e-6


def test_curve_between_a_network_and_its_permuted_copy_has_equal_ends(nets: Nets) -> None:
    params = {"epochs": 1, "points": 5, "batch_size": 256, "splits": ["train"]}
    naive = _run(nets, "curve", [nets.a, nets.pa], params)
    aligned = _run(nets, "curve", [nets.a, nets.pa], {**params, "align": "weights"})
    assert naive.scalars["line_length"] > 1.0
    assert aligned.scalars["line_length"] == 0.0  # the aligned end is the start, exactly
    line = _arrays(nets, aligned)["line_train_loss"]
    np.testing.assert_allclose(line, line[0], rtol=1e-6)
    assert np.ptp(_arrays(nets, naive)["line_train_loss"]) > 1e-3


def test_curve_align_needs_both_ends(nets: Nets) -> None:
    with pytest.raises(BadInput, match="align=weights needs both a start and an end"):
        run_inline(nets.catalog, "curve", [f"start={nets.a.id}"], {"fix_end": False, "align": "weights"})


def test_plane_through_permuted_copies_is_the_plane_through_the_networks(nets: Nets) -> None:
    params = {"xnum": 3, "ynum": 3, "curve_points": 5, "splits": ["test"]}
    direct = _run(nets, "plane", [nets.a, nets.c, nets.b], {**params, "align": "weights"})
    permuted = _run(nets, "plane", [nets.a, nets.pc, nets.pb], {**params, "align": "weights"})
    _assert_same(nets, direct, permuted)
    naive_direct = _run(nets, "plane", [nets.a, nets.c, nets.b], params)
    naive_permuted = _run(nets, "plane", [nets.a, nets.pc, nets.pb], params)
    assert abs(naive_direct.scalars["distance"] - naive_permuted.scalars["distance"]) > 1e-3
    assert direct.scalars["distance"] < naive_direct.scalars["distance"]  # matching brings the end closer


def test_tunnel_to_a_permuted_copy_is_the_tunnel_to_the_network(nets: Nets) -> None:
    params = {"pieces": 2, "steps": 3, "per_segment": 2, "batch_size": 64, "splits": ["train"]}
    direct = _run(nets, "tunnel", [nets.a, nets.b], {**params, "align": "weights"})
    permuted = _run(nets, "tunnel", [nets.a, nets.pb], {**params, "align": "weights"})
    _assert_same(nets, direct, permuted)
    naive = _run(nets, "tunnel", [nets.a, nets.pb], params)
    assert abs(naive.scalars["distance"] - direct.scalars["distance"]) > 1e-3
    with pytest.raises(BadInput, match="same weights once aligned"):
        _run(nets, "tunnel", [nets.a, nets.pa], {**params, "align": "weights"})


def test_mconnector_over_permuted_copies_is_the_mconnector_over_the_networks(nets: Nets) -> None:
    params = {"resolution": 2, "steps": 2, "batch_size": 64, "splits": ["train"]}
    direct = _run(nets, "mconnector", [nets.a, nets.b, nets.c], {**params, "align": "weights"})
    permuted = _run(nets, "mconnector", [nets.a, nets.pb, nets.pc], {**params, "align": "weights"})
    _assert_same(nets, direct, permuted)
    naive = _run(nets, "mconnector", [nets.a, nets.pb, nets.pc], params)
    differs = _arrays(nets, naive)["hull_train_loss"] - _arrays(nets, direct)["hull_train_loss"]
    assert np.abs(differs).max() > 1e-4


@pytest.mark.parametrize("method", ["weights", "activations"])
def test_ensemble_of_a_network_and_its_permuted_copy_is_zero_apart_once_aligned(nets: Nets, method: str) -> None:
    naive = _run(nets, "ensemble", [nets.a, nets.pa], {})
    aligned = _run(nets, "ensemble", [nets.a, nets.pa], {"align": method})
    assert aligned.scalars["mean_weight_distance"] == 0.0
    assert aligned.scalars["mean_weight_cosine"] == pytest.approx(1.0, abs=1e-12)
    assert naive.scalars["mean_weight_distance"] > 1.0 and naive.scalars["mean_weight_cosine"] < 0.99
    # the outputs are the same functions either way: disagreement is invariant to the permutation
    assert naive.scalars["mean_disagreement"] == aligned.scalars["mean_disagreement"] == 0.0
    assert naive.scalars["ensemble_nll"] == pytest.approx(aligned.scalars["ensemble_nll"], rel=1e-6)


def test_ensemble_weight_metrics_are_those_of_the_aligned_members(nets: Nets) -> None:
    direct = _run(nets, "ensemble", [nets.a, nets.b, nets.c], {"align": "weights"})
    permuted = _run(nets, "ensemble", [nets.a, nets.pb, nets.pc], {"align": "weights"})
    _assert_same(nets, direct, permuted)
    naive = _run(nets, "ensemble", [nets.a, nets.pb, nets.pc], {})
    distance = _arrays(nets, naive)["weight_distance"]
    states = [load_state(nets.catalog, c) for c in (nets.a, nets.pb, nets.pc)]
    flat = [torch.cat([s[k].double().flatten() for k in sorted(s)]) for s in states]  # every tensor is a parameter
    expected = [[float((x - y).norm()) for y in flat] for x in flat]
    np.testing.assert_allclose(distance, expected, rtol=1e-12)
    assert direct.scalars["mean_weight_distance"] < naive.scalars["mean_weight_distance"]


def load_state(catalog: CatalogDB, checkpoint: CheckpointRecord) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(catalog.objects.read_verified(checkpoint.blob_digest))


def test_an_unknown_alignment_is_refused_before_any_work(nets: Nets) -> None:
    with pytest.raises(BadInput, match="align"):
        _run(nets, "ensemble", [nets.a, nets.b], {"align": "procrustes"})


def test_alignment_results_are_stored_once_per_pair_and_method(nets: Nets) -> None:
    aligns = nets.catalog.results.list(analysis="align")
    pairs = [(r.params["method"], *(i.checkpoint_id for i in r.inputs)) for r in aligns]
    assert aligns and len(pairs) == len(set(pairs))  # however many analyses above aligned the same pair
