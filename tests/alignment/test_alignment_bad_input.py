"""Requests the alignment analyses refuse, each with one line: networks that differ, a graph that cannot be
traced (naming the module), and merge methods given the wrong inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsdb.errors import BadInput
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

PLUGIN = ["lsdb_alignment.plugin"]
SMALL = "mlp:widths=[8]"
UNTRACEABLE = "tests.alignment.factories:data_dependent"


def _one_line(exc: pytest.ExceptionInfo[BadInput]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.fixture
def catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    with temp_catalog(tmp_path, plugins=PLUGIN) as cat:
        yield cat


def test_networks_of_different_architectures_are_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", SMALL, "digits", seed=0)
    wide = add_model_checkpoint(catalog, "wide", "mlp:widths=[16]", "digits", seed=1)
    for analysis, inputs in (("align", [a.id, wide.id]), ("merge", [a.id, wide.id]),
                             ("merge-plane", [a.id, a.id, wide.id])):
        with pytest.raises(BadInput) as exc:
            run_inline(catalog, analysis, inputs)
        assert "different schemas" in _one_line(exc)


def test_a_model_whose_graph_cannot_be_traced_is_named(catalog) -> None:  # type: ignore[no-untyped-def]
    a = add_model_checkpoint(catalog, "a", UNTRACEABLE, "digits", seed=0)
    b = add_model_checkpoint(catalog, "b", UNTRACEABLE, "digits", seed=1)
    for analysis, params in (("align", {}), ("merge", {"align": "weights"})):
        with pytest.raises(BadInput) as exc:
            run_inline(catalog, analysis, [a.id, b.id], params)
        message = _one_line(exc)
        assert message.startswith(f"{analysis}: cannot trace") and "unsupported module 'gate' (Gate)" in message
    assert run_inline(catalog, "merge", [a.id, b.id]).scalars["n_merged"] == 2  # no alignment: no tracing


def test_merge_methods_given_the_wrong_inputs_are_refused(catalog) -> None:  # type: ignore[no-untyped-def]
    a, b, c = (add_model_checkpoint(catalog, r, SMALL, "digits", seed=i) for i, r in enumerate("abc"))
    cases = (
        ({"method": "task-arithmetic"}, [a.id, b.id], "needs a base checkpoint"),
        ({"method": "ties"}, [a.id, b.id], "needs a base checkpoint"),
        ({"method": "slerp"}, [a.id, b.id, c.id], "slerp merges exactly 2 networks, got 3"),
        ({"method": "average", "weights": "[1.0]"}, [a.id, b.id], "1 weights for 2 networks"),
    )
    for params, inputs, expected in cases:
        with pytest.raises(BadInput) as exc:
            run_inline(catalog, "merge", inputs, params)
        assert expected in _one_line(exc)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "merge", [a.id, b.id], {"method": "dare"})
    assert "method" in _one_line(exc)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "merge-plane", [a.id, a.id, b.id])
    assert "task vector is zero" in _one_line(exc)
    with pytest.raises(BadInput) as exc:
        run_inline(catalog, "align", [a.id, b.id], {"steps": 2})
    assert "steps" in _one_line(exc)
