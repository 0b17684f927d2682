"""`tunnel-width` with ``params=``: the random directions live in the selected parameters only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lsdb_structure import tunnel_width
from lsdb_structure.tunnel_width import TUNNEL_WIDTH, TunnelWidthParams

from lsdb.errors import BadInput
from lsdb.landscape.radial import radial_widths
from tests.plugins.surfaces_factories import make_checkpoint, make_context, make_state

FAST = {"directions": 3, "grid": 6, "iters": 6, "threshold": 0.5, "max_radius": 30.0, "subset": 200}


def _run(monkeypatch: pytest.MonkeyPatch, params: TunnelWidthParams) -> tuple[dict[str, np.ndarray], dict]:
    """The result's arrays and what `radial_widths` was called with (directions, centre, loss, the rest)."""
    seen: dict = {}

    def spy(loss, theta, directions, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["directions"], seen["theta"], seen["loss"], seen["rest"] = directions.clone(), theta, loss, (args, kwargs)
        return radial_widths(loss, theta, directions, *args, **kwargs)

    monkeypatch.setattr(tunnel_width, "radial_widths", spy)
    state = make_state(seed=0)
    out = TUNNEL_WIDTH.run(make_context(), {"center": [make_checkpoint(state)]}, params)
    return out.arrays, seen


@pytest.mark.parametrize("norm", ["none", "filter"])
def test_directions_are_zero_outside_the_selection_and_width_matches_hand_masking(
        monkeypatch: pytest.MonkeyPatch, norm: str) -> None:
    selected, seen = _run(monkeypatch, TunnelWidthParams(norm=norm, params="1.*", **FAST))
    d_sel, theta = seen["directions"], seen["theta"]
    mask = torch.cat([torch.full((v.numel(),), k.startswith("1."), dtype=torch.bool)
                      for k, v in make_state(seed=0).items()])  # the MLP's parameters in layout order
    assert len(mask) == len(theta)
    assert bool((d_sel[:, ~mask] == 0).all()) and bool((d_sel[:, mask] != 0).any())
    if norm == "none":
        assert np.allclose(selected["direction_norms"], 1.0, atol=1e-6)
    # the same seed without a selection draws the same raw directions: mask them by hand
    # (filter normalization acts filter by filter, so masking commutes with it; a unit direction is renormalized)
    full, unselected = _run(monkeypatch, TunnelWidthParams(norm=norm, **FAST))
    by_hand = unselected["directions"] * mask
    if norm == "none":
        by_hand = by_hand / torch.linalg.vector_norm(by_hand, dim=1, keepdim=True)
    torch.testing.assert_close(d_sel, by_hand, rtol=1e-5, atol=1e-7)
    args, kwargs = seen["rest"]
    again = radial_widths(seen["loss"], theta, by_hand, *args, **kwargs)
    np.testing.assert_allclose(selected["widths"], again.widths.numpy(), rtol=1e-5)
    assert not np.allclose(selected["widths"], full["widths"])


def test_tunnel_width_with_a_selection_of_nothing_is_one_line() -> None:
    state = make_state(seed=0)
    with pytest.raises(BadInput) as err:
        TUNNEL_WIDTH.run(make_context(), {"center": [make_checkpoint(state)]},
                         TunnelWidthParams(params="nosuch.*", **FAST))
    assert "\n" not in str(err.value) and str(err.value).startswith("tunnel-width:")


def test_default_params_leave_the_cache_key_unchanged() -> None:
    from lsdb.analyses.contract import params_to_dict

    assert "params" not in params_to_dict(TunnelWidthParams())
    assert params_to_dict(TunnelWidthParams(params="1.*"))["params"] == "1.*"
