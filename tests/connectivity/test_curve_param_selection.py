"""`curve` with ``params=``: only the selected parameters bend; every other stays at the start's value."""

from __future__ import annotations

import pytest
import torch
from lsdb_connectivity import CURVE
from lsdb_connectivity.curve import CurveParams

from lsdb.analyses.contract import params_to_dict
from lsdb.errors import BadInput
from lsdb.landscape.curves import CurveModel, CurveTraining, train_curve
from tests.plugins.surfaces_factories import make_checkpoint, make_context, make_state, reference_loss


def test_curve_trained_on_one_layer_leaves_every_other_layer_at_the_start() -> None:
    a, b = make_state(seed=0), make_state(seed=1)
    inputs = {"start": [make_checkpoint(a, id=1)], "end": [make_checkpoint(b, id=2)]}
    params = CurveParams(bends=2, epochs=2, points=5, splits=("train",), params="1.*")
    selected = {k for k in a if k.startswith("1.")}
    assert selected and selected != set(a)
    out = CURVE.run(make_context(), inputs, params)
    hybrid = {k: (b[k] if k in selected else a[k]) for k in a}  # the curve's end under interpolate's semantics
    for c in out.checkpoints:
        for k in a:
            if k not in selected:
                assert torch.equal(c.tensors[k], a[k]), k
        assert any(not torch.equal(c.tensors[k], a[k]) for k in selected)  # the selected layer did bend
    loss = out.arrays["curve_train_loss"]
    assert loss[0] == pytest.approx(reference_loss(a, "train")[0], rel=1e-10)
    assert loss[-1] == pytest.approx(reference_loss(hybrid, "train")[0], rel=1e-10)


def test_curve_with_a_selection_of_nothing_is_one_line_naming_parameters() -> None:
    a, b = make_state(seed=0), make_state(seed=1)
    inputs = {"start": [make_checkpoint(a, id=1)], "end": [make_checkpoint(b, id=2)]}
    with pytest.raises(BadInput) as err:
        CURVE.run(make_context(), inputs, CurveParams(epochs=1, points=3, params="nosuch.*"))
    message = str(err.value)
    assert "\n" not in message and message.startswith("curve:") and "1.weight" in message


def test_default_params_leave_the_cache_key_unchanged() -> None:
    assert "params" not in params_to_dict(CurveParams())
    assert params_to_dict(CurveParams(params="1.*"))["params"] == "1.*"


def test_curve_model_trains_only_the_trainable_entries() -> None:
    net = torch.nn.Linear(3, 2)
    start = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    end = {k: torch.ones_like(v) for k, v in net.state_dict().items()}
    trainable = torch.tensor([True] * 6 + [False] * 2)  # the weight, not the bias
    curve = CurveModel(net, start, end, bends=1, trainable=trainable)
    before = curve.free_points.detach().clone()
    x, y = torch.randn(32, 3, generator=torch.Generator().manual_seed(0)), torch.randint(0, 2, (32,))
    train_curve(curve, x, y, CurveTraining(epochs=3, lr=0.5, batch_size=8), torch.Generator().manual_seed(1))
    after = curve.free_points.detach()
    assert torch.equal(after[:, ~trainable], before[:, ~trainable]) and torch.equal(after[0, 6:], torch.full((2,), 0.5))
    assert not torch.equal(after[:, trainable], before[:, trainable])
    with pytest.raises(ValueError, match="trainable mask"):
        CurveModel(net, start, end, trainable=torch.ones(5, dtype=torch.bool))
