"""The five analyses on hand-built contexts (checked against plain forward passes) and end to end through
the catalog, lsdb's runner and every renderer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lsdb_connectivity import CURVE, ENSEMBLE, FGE, PLANE, SWA
from lsdb_connectivity.curve import CurveParams
from lsdb_connectivity.ensemble import EnsembleParams
from lsdb_connectivity.fge import FgeParams
from lsdb_connectivity.plane import PlaneParams
from lsdb_connectivity.swa import SwaParams
from torch.optim.swa_utils import AveragedModel, update_bn

from lsdb.analyses.exporting import plot_result
from lsdb.data import load_dataset
from lsdb.models import build_model
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog
from tests.plugins.surfaces_factories import (
    BN_MLP,
    DIGITS,
    MLP,
    make_checkpoint,
    make_context,
    make_state,
    reference_loss,
)

PLUGIN = ["lsdb_connectivity.plugin"]
SMALL = "mlp:widths=[8]"


def _assert_reference(loss: float, error: float, state: dict[str, torch.Tensor], split: str, model=MLP) -> None:
    ref_loss, ref_acc = reference_loss(state, split, model=model)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    assert error == pytest.approx(1 - ref_acc, abs=1e-12)


def test_curve_evaluates_curve_and_line_with_exact_end_points_and_stores_its_bends() -> None:
    a, b = make_state(seed=0), make_state(seed=1)
    inputs = {"start": [make_checkpoint(a, id=1)], "end": [make_checkpoint(b, id=2)]}
    out = CURVE.run(make_context(), inputs, CurveParams(bends=2, epochs=2, points=5, splits=("train",)))
    arrays, scalars = out.arrays, out.scalars
    assert list(arrays["t"]) == [0.0, 0.25, 0.5, 0.75, 1.0] and len(arrays["epoch_objective"]) == 2
    for path in ("curve", "line"):
        _assert_reference(arrays[f"{path}_train_loss"][0], arrays[f"{path}_train_error"][0], a, "train")
        _assert_reference(arrays[f"{path}_train_loss"][-1], arrays[f"{path}_train_error"][-1], b, "train")
        assert scalars[f"{path}_train_loss_barrier"] >= 0.0 and f"{path}_train_error_barrier" in scalars
    assert scalars["curve_length"] >= scalars["line_length"] * (1 - 1e-9)
    assert [c.label for c in out.checkpoints] == ["curve bend 1", "curve bend 2"]
    for c in out.checkpoints:
        assert set(c.tensors) == set(a) and all(c.tensors[k].dtype == a[k].dtype for k in a)


def test_curve_with_batchnorm_recomputes_statistics_along_the_curve_and_at_its_bends() -> None:
    a, b = make_state(BN_MLP, seed=0), make_state(BN_MLP, seed=1)
    inputs = {"start": [make_checkpoint(a, id=1)], "end": [make_checkpoint(b, id=2)]}
    out = CURVE.run(make_context(BN_MLP), inputs, CurveParams(epochs=1, points=3, splits=("test",)))
    assert out.attrs["bn"] == "recompute"
    bend = out.checkpoints[0].tensors
    assert int(bend["2.num_batches_tracked"]) == 12  # 1,437 training examples in batches of 128
    assert not torch.equal(bend["2.running_mean"], a["2.running_mean"])


def test_plane_puts_the_three_points_where_garipov_et_al_do() -> None:
    a, bend, b = make_state(seed=0), make_state(seed=2), make_state(seed=1)
    inputs = {"start": [make_checkpoint(a, id=1)], "end": [make_checkpoint(b, id=2)],
              "bend": [make_checkpoint(bend, id=3)]}
    out = PLANE.run(make_context(), inputs, PlaneParams(xnum=4, ynum=3, splits=("train",), curve_points=11))
    arr, sc = out.arrays, out.scalars
    names = [n for n in a if not n.endswith("num_batches_tracked")]
    flat = {k: torch.cat([s[n].double().reshape(-1) for n in names]) for k, s in (("a", a), ("b", b), ("w", bend))}
    u = flat["b"] - flat["a"]
    assert sc["distance"] == pytest.approx(float(u.norm()), rel=1e-10)
    assert sc["bend_x"] == pytest.approx(float((flat["w"] - flat["a"]) @ u / u.norm()), rel=1e-10)
    np.testing.assert_allclose(arr["points_x"], [0.0, sc["bend_x"], sc["distance"]])
    np.testing.assert_allclose(arr["points_y"], [0.0, sc["bend_y"], 0.0])
    assert (arr["curve_x"][0], arr["curve_y"][0]) == (0.0, 0.0) and arr["curve_x"][-1] == pytest.approx(sc["distance"])
    assert arr["train_loss"].shape == (3, 4) and arr["x"][0] < 0 < sc["distance"] < arr["x"][-1]
    for name, state in (("start", a), ("bend", bend), ("end", b)):
        _assert_reference(sc[f"{name}_train_loss"], sc[f"{name}_train_error"], state, "train")


def test_fge_collects_one_snapshot_per_cycle_and_judges_the_growing_ensemble() -> None:
    start = make_state(seed=0)
    params = FgeParams(snapshots=3, cycle=2, lr_max=0.1, lr_min=1e-3, batch_size=256)
    out = FGE.run(make_context(), {"start": [make_checkpoint(start)]}, params)
    assert params.epochs == 5 and list(out.arrays["snapshot_epoch"]) == [1, 3, 5]
    assert [c.label for c in out.checkpoints] == ["fge snapshot 1", "fge snapshot 2", "fge snapshot 3"]
    lr = out.arrays["lr"]  # 6 steps per epoch: α2 ends the first half of each 12-step cycle, α1 its end
    assert len(lr) == 5 * 6 and lr[5] == pytest.approx(1e-3) and lr[11] == pytest.approx(0.1) == lr.max()
    for k, ckpt in enumerate(out.checkpoints):
        _, acc = reference_loss({n: t.double() for n, t in ckpt.tensors.items()}, "test")
        assert out.scalars[f"member_error_{k + 1}"] == pytest.approx(1 - acc, abs=1e-12)
    assert out.scalars["ensemble_error_1"] == out.scalars["member_error_1"]
    assert out.scalars["ensemble_error_3"] == out.scalars["ensemble_error"]
    _assert_reference(out.scalars["start_test_nll"], out.scalars["start_test_error"], start, "test")


def test_swa_of_given_members_equals_averaged_model_and_update_bn() -> None:
    states = [make_state(BN_MLP, seed=s) for s in range(3)]
    members = [make_checkpoint(s, id=i + 1) for i, s in enumerate(states)]
    ctx = make_context(BN_MLP)
    out = SWA.run(ctx, {"members": members}, SwaParams(batch_size=100))
    data = load_dataset(DIGITS)
    nets = [build_model(BN_MLP, data.input_shape, data.num_classes).double() for _ in states]
    for net, state in zip(nets, states, strict=True):
        net.load_state_dict(state)
    reference = AveragedModel(nets[0])
    for net in nets:
        reference.update_parameters(net)
    update_bn(list(data.train[0].double().split(100)), reference)
    (average,) = out.checkpoints
    for key, value in reference.module.state_dict().items():
        ours = average.tensors[key]  # stored in the members' dtype (float32), computed in the context's
        assert torch.equal(ours, value.to(ours.dtype)), key
    assert out.scalars["n_averaged"] == 3 and "mean_member_test_error" in out.scalars


def test_swa_from_a_start_averages_at_each_cycle_end() -> None:
    params = SwaParams(epochs=4, cycle=2, lr=0.1, swa_lr=0.01, batch_size=256)
    out = SWA.run(make_context(), {"start": [make_checkpoint(make_state(seed=0))]}, params)
    assert list(out.arrays["averaged_epoch"]) == [2, 4] and out.scalars["n_averaged"] == 2
    lr = out.arrays["lr"]  # 6 steps per epoch, 12 per cycle, the last at swa_lr
    assert lr[11] == lr[23] == pytest.approx(0.01) and lr[0] == pytest.approx(0.1 - 0.09 / 12)
    assert out.checkpoints[0].label == "swa average"
    assert {"swa_test_error", "sgd_test_error", "swa_train_loss", "sgd_train_loss"} <= set(out.scalars)


def test_ensemble_of_identical_members_is_the_member() -> None:
    state = make_state(seed=0)
    out = ENSEMBLE.run(make_context(), {"members": [make_checkpoint(state, id=1), make_checkpoint(state, id=2)]},
                       EnsembleParams())
    _assert_reference(out.scalars["ensemble_nll"], out.scalars["ensemble_error"], state, "test")
    assert out.scalars["ensemble_error"] == out.scalars["mean_member_error"]
    assert out.scalars["mean_disagreement"] == 0.0 and out.arrays["disagreement"].shape == (2, 2)


def _produced(catalog, result_id: int, label: str) -> int:  # type: ignore[no-untyped-def]
    found = [c.id for c in catalog.checkpoints.list() if c.produced_by == result_id and c.label == label]
    assert len(found) == 1, found
    return found[0]


def _render(catalog, result_id: int, kinds: list[str], folder: Path) -> None:  # type: ignore[no-untyped-def]
    for kind in kinds:
        path = plot_result(catalog, result_id, kind, folder / f"{result_id}-{kind}.png")
        assert path.read_bytes().startswith(b"\x89PNG")


def test_all_analyses_run_through_the_catalog_and_every_renderer_saves(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0, step=0)
        b = add_model_checkpoint(catalog, "b", SMALL, "digits", seed=1, step=0)
        curve = run_inline(catalog, "curve", [f"start={a.id}", f"end={b.id}"],
                           {"epochs": "1", "points": "3", "curve": "polychain"})
        assert run_inline(catalog, "curve", [f"start={a.id}", f"end={b.id}"],
                          {"epochs": "1", "points": "3", "curve": "polychain"}).id == curve.id  # cached
        bend = _produced(catalog, curve.id, "curve bend 1")
        plane = run_inline(catalog, "plane", [f"start={a.id}", f"end={b.id}", f"bend={bend}"],
                           {"xnum": "3", "ynum": "3", "curve": "polychain"})
        fge = run_inline(catalog, "fge", [a.id], {"snapshots": "2", "cycle": "2", "batch_size": "512"})
        _produced(catalog, fge.id, "fge snapshot 2")
        swa = run_inline(catalog, "swa", [f"start={a.id}"], {"epochs": "1", "batch_size": "512"})
        average = _produced(catalog, swa.id, "swa average")
        members = run_inline(catalog, "swa", [f"members={a.id}", f"members={b.id}"])
        ensemble = run_inline(catalog, "ensemble", [a.id, b.id, average])
        assert ensemble.scalars["n_members"] == 3
        _render(catalog, curve.id, ["default"], tmp_path)
        _render(catalog, plane.id, ["default", "test_error"], tmp_path)
        _render(catalog, fge.id, ["default", "disagreement"], tmp_path)
        _render(catalog, swa.id, ["default"], tmp_path)
        _render(catalog, members.id, ["default"], tmp_path)
        _render(catalog, ensemble.id, ["default", "disagreement"], tmp_path)
