"""`surface --dtype bfloat16`: the model, θ0 and the directions are all bfloat16 (half the memory of float32), and
the losses are the bfloat16 model's, checked against transformers' own loss of the same model cast to bfloat16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lsdb
from lsdb.data.text import text
from lsdb.landscape import Evaluator
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2

#: weight matrices scaled up so that bfloat16 rounding moves the loss well above float64 summation noise
SCALE = 8.0


def test_a_bfloat16_surface_is_the_bfloat16_models_in_bfloat16_directions(
        sqlite_url: str, store_root: Path, tmp_path: Path, corpus: Path) -> None:
    ds = text(str(corpus), block=32, max_examples=24)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(SCALE)
    model._forward_hooks.clear()  # transformers' own forward and loss
    model.save_pretrained(tmp_path / "m")
    x, _ = ds.train
    with torch.no_grad():
        hf32 = float(model(input_ids=x, labels=x).loss)
        hf16 = float(model.to(torch.bfloat16)(input_ids=x, labels=x).loss)
    assert abs(hf16 - hf32) / hf32 > 1e-5  # bfloat16 is a different model here

    cat = lsdb.open_catalog(sqlite_url, store_root)
    try:
        cat.ingest([tmp_path / "m"], "m", dataset=f"text:path={corpus},block=32,max_examples=24")
        f32 = cat.run("surface", "m", xnum=3, ynum=3, device="cpu", save_directions=True)
        b16 = cat.run("surface", "m", xnum=3, ynum=3, device="cpu", dtype="bfloat16", save_directions=True)
    finally:
        cat.close()

    # the centre is the bfloat16 model's loss (float64 sums against transformers' float32 mean), not float32's
    assert b16.scalars["center_loss"] == pytest.approx(hf16, rel=1e-6)
    assert f32.scalars["center_loss"] == pytest.approx(hf32, rel=1e-6)
    # every grid point agrees with float32 within bfloat16's tolerance (8 significant bits)
    np.testing.assert_allclose(b16.arrays["loss"], f32.arrays["loss"], rtol=1e-2)
    # the directions were built in bfloat16: every stored number is a bfloat16, near the float32 direction
    d16, d32 = b16.arrays["directions"], f32.arrays["directions"]
    assert np.array_equal(torch.from_numpy(d16).bfloat16().float().numpy(), d16)
    assert not np.array_equal(torch.from_numpy(d32).bfloat16().float().numpy(), d32)
    np.testing.assert_allclose(d16, d32, rtol=2**-6, atol=0)


def test_a_bfloat16_evaluator_holds_its_point_and_directions_in_bfloat16(corpus: Path) -> None:
    ds = text(str(corpus), block=32, max_examples=8)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0).eval().to(torch.bfloat16)
    x, y = ds.train
    ev = Evaluator(model, x, y, loss="token_cross_entropy", dtype=torch.bfloat16)
    assert ev.theta0.dtype == ev.model.flat.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in ev.model.module.parameters())
    assert all(p.untyped_storage().data_ptr() == ev.model.flat.untyped_storage().data_ptr()
               for p in ev.model.module.parameters())  # views of the one bfloat16 vector, no float32 copy
    centre = ev.at_points(ev.theta0.unsqueeze(0))
    with torch.inference_mode():
        logits = model(x).float()  # lsdb's causal-LM output: positions 0..T-2, scored against tokens 1..T-1
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
    assert float(centre.loss[0]) == pytest.approx(float(want) / y.numel(), rel=1e-6)
