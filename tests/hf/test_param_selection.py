"""Per-layer selection by parameter-name globs (surface, interpolate, hessian) and transformer filter-normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lsdb
from lsdb.landscape import ParamLayout, normalize_direction, select_entries
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2
from .test_hf_models import gpt2_run  # noqa: F401 - the fixture

ATTN = "transformer.h.*.attn.*"


def test_globs_select_exclude_and_name_the_closest_parameters() -> None:
    model = build_model(TINY_GPT2, (16,), 259, seed=0)
    layout = ParamLayout.from_module(model)
    names = [e.name for e in select_entries(layout, ATTN)]
    assert names and all(".attn." in n for n in names)
    no_bias = [e.name for e in select_entries(layout, f"{ATTN} !*.bias")]
    assert no_bias == [n for n in names if not n.endswith(".bias")]
    assert "transformer.wte.weight" not in [e.name for e in select_entries(layout, "!transformer.wte.*")]
    closest = r"selects no parameter; closest names: transformer\.h\.\*\.attn\.c_attn\.weight"
    with pytest.raises(ValueError, match=closest):
        select_entries(layout, "transformer.h.*.atn.c_atn.weight")


def test_filter_normalization_of_conv1d_is_per_output_unit() -> None:
    model = build_model(TINY_GPT2, (16,), 259, seed=0)
    layout = ParamLayout.from_module(model)
    entry = next(e for e in layout.entries if e.name == "transformer.h.0.mlp.c_fc.weight")
    assert entry.filter_dim == 1  # transformers' Conv1D stores (in, out)
    theta = layout.flatten(model)
    d = normalize_direction(torch.randn(layout.numel, generator=torch.Generator().manual_seed(0)), theta, layout)
    w = theta[entry.offset:entry.stop].view(entry.shape)
    dw = d[entry.offset:entry.stop].view(entry.shape)
    torch.testing.assert_close(dw.norm(dim=0), w.norm(dim=0))  # each output unit (column) has its weight's norm
    emb = next(e for e in layout.entries if e.name == "transformer.wte.weight")  # per token vector
    torch.testing.assert_close(d[emb.offset:emb.stop].view(emb.shape).norm(dim=1),
                               theta[emb.offset:emb.stop].view(emb.shape).norm(dim=1))
    ln = next(e for e in layout.entries if e.name == "transformer.h.0.ln_1.weight")  # LayerNorm like BatchNorm
    assert not d[ln.offset:ln.stop].any()


def test_a_surface_over_selected_params_equals_the_masked_full_surface(gpt2_run: lsdb.Catalog) -> None:  # noqa: F811
    cat = gpt2_run
    full = cat.run("surface", "gpt:5", xnum=3, ynum=3, save_directions=True, device="cpu")
    part = cat.run("surface", "gpt:5", xnum=3, ynum=3, save_directions=True, params={"params": ATTN}, device="cpu")
    model = build_model(TINY_GPT2, (32,), 259)
    layout = ParamLayout.from_module(model)
    mask = np.zeros(layout.n_params, dtype=bool)
    for e in select_entries(layout, ATTN):
        mask[e.offset:e.stop] = True
    np.testing.assert_array_equal(part.arrays["directions"], full.arrays["directions"] * mask)
    # evaluate the masked full directions directly: the same surface
    from safetensors.torch import load as load_safetensors

    from lsdb.analyses.context import load_state_strict
    from lsdb.data import load_dataset
    from lsdb.landscape import Evaluator, evaluate_grid, grid_axis

    ds = load_dataset(cat.get_run("gpt").dataset_spec)
    ckpt = next(c for c in cat.checkpoints("gpt") if c.step == 5)
    weights = load_safetensors(cat._db.objects.read_bytes(ckpt.tensor_digest))
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes)
    load_state_strict(model, weights)
    ev = Evaluator(model.eval(), *ds.train, loss="token_cross_entropy")
    axis = grid_axis(-1.0, 1.0, 3)
    grid = evaluate_grid(ev, torch.from_numpy(full.arrays["directions"] * mask), axis, axis, ev.theta0)
    np.testing.assert_allclose(part.arrays["loss"], grid.loss.double().numpy().T, rtol=1e-5)
    assert not np.allclose(part.arrays["loss"], full.arrays["loss"])


def test_interpolate_and_hessian_per_block(gpt2_run: lsdb.Catalog) -> None:  # noqa: F811
    cat = gpt2_run
    line = cat.run("interpolate", "gpt:0", "gpt:5", steps=3, alpha_min=0.0, alpha_max=1.0, splits=["train"],
                   params={"params": ATTN}, device="cpu")
    whole = cat.run("interpolate", "gpt:0", "gpt:5", steps=3, alpha_min=0.0, alpha_max=1.0, splits=["train"],
                    device="cpu")
    assert line.arrays["train_loss"][0] == pytest.approx(whole.arrays["train_loss"][0])
    assert line.arrays["train_loss"][-1] != pytest.approx(whole.arrays["train_loss"][-1])
    block = cat.run("hessian", "gpt:5", k=1, subset=8, trace=False, params={"params": ATTN}, device="cpu")
    assert block.attrs["n_params"] < cat.checkpoints("gpt")[0].n_params
    assert block.arrays["eigenvectors"].shape[1] > block.attrs["n_params"]  # embedded in the full space
    with pytest.raises(lsdb.BadInput, match="closest names"):
        cat.run("hessian", "gpt:5", k=1, subset=8, params={"params": "transformer.h.*.atn.*"}, device="cpu")
