"""Requests the connectivity analyses refuse, each with a one-line `BadInput` before any training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lsdb_connectivity import PLANE, SWA
from lsdb_connectivity.plane import PlaneParams
from lsdb_connectivity.swa import SwaParams

from lsdb.data import Dataset, load_dataset
from lsdb.errors import BadInput
from lsdb.specs import Spec
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog
from tests.plugins.surfaces_factories import BN_MLP, make_checkpoint, make_context, make_state

PLUGIN = ["lsdb_connectivity.plugin"]
SMALL = "mlp:widths=[8]"


def _one_line(exc: pytest.ExceptionInfo[BadInput]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.fixture
def catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    with temp_catalog(tmp_path, plugins=PLUGIN) as cat:
        yield cat


def test_checkpoints_of_different_schemas_are_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    wide = add_model_checkpoint(catalog, "wide", "mlp:widths=[16]", "digits", seed=1)
    for analysis, inputs in (("curve", [f"start={a.id}", f"end={wide.id}"]), ("ensemble", [a.id, wide.id]),
                             ("swa", [f"members={a.id}", f"members={wide.id}"])):
        with pytest.raises(BadInput) as exc:
            run_inline(catalog, analysis, inputs)
        assert "different schemas" in _one_line(exc)


def test_a_curve_asked_to_fix_an_end_that_is_not_given_is_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "curve", [f"start={a.id}"])
    assert "fix_end=true needs an end checkpoint" in _one_line(exc)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "curve", [f"end={a.id}"], {"fix_end": "false"})
    assert "fix_start=true needs a start checkpoint" in _one_line(exc)


@pytest.mark.parametrize("cycle", ["3", "0", "-2"])
def test_an_fge_cycle_that_is_not_a_positive_even_number_of_epochs_is_refused(catalog, cycle: str
                                                                              ) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "fge", [a.id], {"cycle": cycle})
    assert "positive even number of epochs" in _one_line(exc)


def test_an_ensemble_of_one_is_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    for analysis, inputs, params in (("ensemble", [a.id], {}), ("fge", [a.id], {"snapshots": "1"}),
                                     ("swa", [f"members={a.id}"], {})):
        with pytest.raises(BadInput) as exc:
            run_inline(catalog, analysis, inputs, params)
        message = _one_line(exc)
        assert "2" in message and ("members" in message or "snapshots" in message), message


def _without_training_data() -> Dataset:
    digits = load_dataset("digits")
    empty = (digits.train[0][:0], digits.train[1][:0])
    return Dataset("no-train", Spec("no-train"), empty, digits.test, digits.input_shape, digits.num_classes,
                   "classification")


def test_batchnorm_without_training_data_to_recompute_statistics_is_refused() -> None:
    ctx = make_context(BN_MLP, _dataset=_without_training_data())
    states = [make_state(BN_MLP, seed=s) for s in range(3)]
    members = [make_checkpoint(s, id=i + 1) for i, s in enumerate(states)]
    with pytest.raises(BadInput) as exc:
        SWA.run(ctx, {"members": members[:2]}, SwaParams())
    assert "no training examples to recompute the statistics of its BatchNorm layers" in _one_line(exc)
    plane_inputs = {"start": members[:1], "bend": members[1:2], "end": members[2:]}
    with pytest.raises(BadInput) as exc:
        PLANE.run(ctx, plane_inputs, PlaneParams(xnum=2, ynum=2))
    assert "BatchNorm" in _one_line(exc)
    without_bn = make_context(_dataset=_without_training_data())  # no BatchNorm: nothing to recompute
    plain = [make_checkpoint(make_state(seed=s), id=s + 1) for s in range(2)]
    out = SWA.run(without_bn, {"members": plain}, SwaParams(split="test"))
    assert out.scalars["n_averaged"] == 2 and torch.isfinite(torch.tensor(out.scalars["swa_test_error"]))


def test_swa_takes_a_start_or_members_but_not_both(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    b = add_model_checkpoint(catalog, "b", SMALL, "digits", seed=1)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "swa", [f"start={a.id}", f"members={a.id}", f"members={b.id}"])
    assert "either start" in _one_line(exc)
