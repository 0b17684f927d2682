"""`surface -p precision=bf16`: bf16 losses with their error against float32, and an unchanged float32 default."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lsdb_surfaces.surface import SURFACE, SurfaceParams

from lsdb.analyses import Context
from lsdb.analyses.contract import params_to_dict
from lsdb.data import load_dataset
from lsdb.errors import BadInput
from lsdb.landscape import (
    Evaluator,
    ParamLayout,
    evaluate_grid,
    grid_axis,
    grid_coefficients,
    relative_error,
    sample_indices,
)
from lsdb.models import build_model
from tests.plugins.surfaces_factories import DIGITS, MLP, digits_trajectory, make_checkpoint, make_context

SMALL = {"xnum": 7, "ynum": 5, "xmin": -0.6, "xmax": 0.6, "ymin": -0.4, "ymax": 0.4}


def _float32_context() -> Context:
    return Context(device=torch.device("cpu"), seed=0, dtype=torch.float32, model_spec=MLP, dataset_spec=DIGITS,
                   loss="cross_entropy")


class PlainPassContext(Context):
    """A float32 context whose evaluator runs one plain forward pass per point (no vmap, no first-layer reuse):
    in bf16 those are different roundings, and this is the one a test can redo with `nn.Module` calls."""

    def evaluator(self, model, split="train", bn="eval", subset=None):  # type: ignore[no-untyped-def]
        x, y = self.data(split)
        return Evaluator(model, x, y, dtype=self.dtype, strategy="per_point", reuse_first_layer=False)


def _plain_pass_context() -> Context:
    return PlainPassContext(device=torch.device("cpu"), seed=0, dtype=torch.float32, model_spec=MLP,
                            dataset_spec=DIGITS, loss="cross_entropy")


def _run(ctx: Context | None = None, **params):  # type: ignore[no-untyped-def]
    state = digits_trajectory()[-1][1]
    return SURFACE.run(ctx or _float32_context(), {"center": [make_checkpoint(state)]}, SurfaceParams(**params))


def _plain_losses(points: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Train loss at each point by a plain forward pass of a freshly built model (float64 loss of its logits)."""
    data = load_dataset(DIGITS)
    net = build_model(MLP, data.input_shape, data.num_classes).eval()
    layout = ParamLayout.from_module(net)
    x, y = data.split("train")
    out = []
    for p in points:
        net.load_state_dict(layout.unflatten(p), strict=False)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(float(F.cross_entropy(net(x.float()).double(), y)))
    return torch.tensor(out, dtype=torch.float64)


def test_default_precision_leaves_the_cache_key_unchanged() -> None:
    stored = params_to_dict(SurfaceParams())
    assert "precision" not in stored and "precision" not in params_to_dict(SurfaceParams(precision="float32"))
    # the digest of the default params as stored before `precision` existed
    digest = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()
    assert digest == "968363c693f408aa0e4957d00ecb0a9e86cbd148dd47fea86154cebdf43127fc"
    assert params_to_dict(SurfaceParams(precision="bf16"))["precision"] == "bf16"


def test_float32_surface_is_the_plain_float32_grid_bit_for_bit() -> None:
    out = _run(save_directions=True, **SMALL)
    assert not any(k.startswith("bf16_") for k in out.scalars) and out.attrs["precision"] == "float32"
    ctx = _float32_context()
    state = digits_trajectory()[-1][1]
    model = ctx.build_model(state)
    theta = ctx.layout(model).flatten(model, dtype=ctx.dtype, device=ctx.device)
    dirs = torch.from_numpy(out.arrays["directions"])
    grid = evaluate_grid(ctx.evaluator(model), dirs, grid_axis(-0.6, 0.6, 7), grid_axis(-0.4, 0.4, 5), theta)
    np.testing.assert_array_equal(out.arrays["loss"], grid.loss.double().numpy().T)


def test_bf16_surface_reports_its_error_against_plain_float32_passes() -> None:
    f32 = _run(**SMALL)
    out = _run(ctx=_plain_pass_context(), precision="bf16", save_directions=True, **SMALL)
    assert out.attrs["precision"] == "bf16" and out.attrs["eps"] == torch.finfo(torch.bfloat16).eps
    rel = np.abs(out.arrays["loss"] - f32.arrays["loss"]) / f32.arrays["loss"]
    assert 0.0 < rel.max() < 1e-2
    dirs = torch.from_numpy(out.arrays["directions"])
    state = digits_trajectory()[-1][1]
    data = load_dataset(DIGITS)
    net = build_model(MLP, data.input_shape, data.num_classes)
    net.load_state_dict(state)
    theta = ParamLayout.from_module(net).flatten(net)
    every = grid_coefficients(grid_axis(-0.4, 0.4, 5), grid_axis(-0.6, 0.6, 7)).flip(1)  # y-major, as evaluated
    dirs_t = dirs.t().contiguous()
    points = torch.stack([torch.addmv(theta, dirs_t, c.float()) for c in every[sample_indices(len(every))]])
    expected = relative_error(_plain_losses(points, True), _plain_losses(points, False))
    assert expected.n_points == 16 and expected.median_rel > 1e-6
    assert out.scalars["bf16_max_rel_error"] == pytest.approx(expected.max_rel, abs=2e-7)
    assert out.scalars["bf16_median_rel_error"] == pytest.approx(expected.median_rel, abs=2e-7)


def test_bf16_surface_with_the_automatic_strategy_is_within_a_percent() -> None:
    f32, out = _run(**SMALL), _run(precision="bf16", **SMALL)
    rel = np.abs(out.arrays["loss"] - f32.arrays["loss"]) / f32.arrays["loss"]
    assert 0.0 < rel.max() < 1e-2
    assert 0.0 < out.scalars["bf16_median_rel_error"] <= out.scalars["bf16_max_rel_error"] < 1e-2


def test_a_tile_reports_the_whole_grids_bf16_error() -> None:
    whole = _run(precision="bf16", **SMALL)
    tile = _run(precision="bf16", rows=(1, 3), **SMALL)
    for name in ("bf16_max_rel_error", "bf16_median_rel_error"):
        assert tile.scalars[name] == whole.scalars[name]


def test_bf16_in_a_float64_run_is_refused() -> None:
    with pytest.raises(BadInput, match="precision=bf16 needs a float32 evaluation"):
        _run(ctx=make_context(), precision="bf16", dims=1, xnum=3)


def test_tf32_off_cuda_is_refused_before_any_work() -> None:
    with pytest.raises(BadInput, match="precision=tf32 needs a CUDA device.*use bf16 or float32"):
        _run(precision="tf32", **SMALL)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tf32_on_cuda_reports_its_error_against_ieee_float32() -> None:
    ctx = Context(device=torch.device("cuda"), seed=0, dtype=torch.float32, model_spec=MLP, dataset_spec=DIGITS,
                  loss="cross_entropy")
    out = _run(ctx=ctx, precision="tf32", **SMALL)
    plain = _run(ctx=_float32_context(), **SMALL)
    assert 0.0 <= out.scalars["tf32_median_rel_error"] <= out.scalars["tf32_max_rel_error"] < 1e-2
    assert out.attrs["precision"] == "tf32" and out.attrs["eps"] == 2.0**-10
    np.testing.assert_allclose(out.arrays["loss"], plain.arrays["loss"], rtol=1e-2)
