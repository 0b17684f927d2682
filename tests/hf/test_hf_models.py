"""The ``hf`` model spec: losses equal transformers' own, analyses that perturb weights run on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lsdb
from lsdb.data.text import text
from lsdb.errors import BadInput
from lsdb.landscape import Evaluator
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2


def _hf_loss(model: torch.nn.Module, **kwargs: torch.Tensor) -> float:
    """transformers' own `loss`, with lsdb's output hooks off."""
    hooks = dict(model._forward_hooks), dict(model._forward_pre_hooks)
    model._forward_hooks.clear()
    model._forward_pre_hooks.clear()
    try:
        with torch.no_grad():
            return float(model(**kwargs).loss)
    finally:
        model._forward_hooks.update(hooks[0])
        model._forward_pre_hooks.update(hooks[1])


def _lsdb_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> float:
    return float(Evaluator(model, x, y, loss=loss).at_points(Evaluator(model, x, y, loss=loss).theta0[None]).loss[0])


def test_causal_lm_loss_is_transformers_token_mean(corpus: Path) -> None:
    ds = text(str(corpus), block=32, max_examples=24)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0).eval()
    assert model.config.vocab_size == ds.num_classes  # from the byte tokenizer
    x, y = ds.train
    assert ds.default_loss == "token_cross_entropy"
    assert _lsdb_loss(model, x, y, "token_cross_entropy") == pytest.approx(_hf_loss(model, input_ids=x, labels=x),
                                                                           rel=1e-5)


def test_causal_lm_padding_is_ignored_like_transformers(corpus: Path) -> None:
    ds = text(str(corpus), block=16, max_examples=8)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=1).eval()
    x = ds.train[0]
    labels = x.clone()
    labels[:, 10:] = -100  # padding is never scored
    ours = _lsdb_loss(model, x, labels[:, 1:].contiguous(), "token_cross_entropy")
    assert ours == pytest.approx(_hf_loss(model, input_ids=x, labels=labels), rel=1e-5)


def test_masked_lm_loss_on_a_fixed_seeded_mask(corpus: Path) -> None:
    ds = text(str(corpus), block=24, task="masked-lm", max_examples=16, seed=3)
    again = text(str(corpus), block=24, task="masked-lm", max_examples=16, seed=3)
    assert torch.equal(ds.train[1], again.train[1])  # the mask is a function of the seed
    x, y = ds.train
    assert ((y != -100).sum(dim=1) >= 1).all() and bool((x[y != -100] == 258 - 1).all())
    model = build_model("hf:config=bert,num_hidden_layers=1,hidden_size=32,num_attention_heads=2,"
                        "intermediate_size=64,max_position_embeddings=64,task=masked-lm",
                        ds.input_shape, ds.num_classes, seed=0).eval()
    assert _lsdb_loss(model, x, y, "token_cross_entropy") == pytest.approx(_hf_loss(model, input_ids=x, labels=y),
                                                                           rel=1e-5)


def test_sequence_classification_loss_is_transformers_ce(tmp_path: Path) -> None:
    rows = [f'{{"text": "{"good " * (i % 5 + 1)}film {i}", "label": "{"pos" if i % 2 else "neg"}"}}'
            for i in range(40)]
    (tmp_path / "reviews.jsonl").write_text("\n".join(rows))
    ds = text(str(tmp_path / "reviews.jsonl"), task="sequence-classification", block=24)
    assert ds.num_classes == 2 and ds.task == "classification"
    model = build_model("hf:config=bert,num_hidden_layers=1,hidden_size=32,num_attention_heads=2,"
                        "intermediate_size=64,vocab_size=259,pad_token_id=258,task=sequence-classification",
                        ds.input_shape, ds.num_classes, seed=0).eval()
    x, y = ds.train
    mask = (x != 258).long()
    assert _lsdb_loss(model, x, y, "cross_entropy") == pytest.approx(
        _hf_loss(model, input_ids=x, attention_mask=mask, labels=y), rel=1e-5)


def test_bad_specs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no config.json"):
        build_model(f"hf:path={tmp_path}", (8,), 10)
    (tmp_path / "config.json").write_text('{"model_type": "no-such-arch"}')
    with pytest.raises(BadInput, match="not known to transformers"):
        build_model(f"hf:path={tmp_path}", (8,), 10)
    with pytest.raises(BadInput, match="300 tokens but the model's embedding has 100 rows"):
        build_model("hf:config=gpt2,n_layer=1,n_embd=16,n_head=2,vocab_size=100", (8,), 300)


def test_missing_transformers_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(BadInput, match=r"pip install 'lsdb\[hf\]'"):
        build_model(TINY_GPT2, (8,), 259)


@pytest.fixture
def gpt2_run(db_url: str, store_root: Path, corpus: Path) -> lsdb.Catalog:
    """A run of a tiny GPT-2 on the corpus with two recorded checkpoints (initial and a few SGD steps)."""
    cat = lsdb.open_catalog(db_url, store_root)
    dataset = f"text:path={corpus},block=32,max_examples=32"
    ds = text(str(corpus), block=32, max_examples=32)
    with cat.record("gpt", TINY_GPT2, dataset) as rec:
        model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0)
        rec.checkpoint(model, step=0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, _ = ds.train
        model.train()
        for _ in range(5):
            opt.zero_grad()
            model._forward_hooks.clear()  # train with transformers' own loss
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
        from lsdb.models.hf import attach_task

        attach_task(model.eval(), "causal-lm")
        rec.checkpoint(model, step=5)
    yield cat
    cat.close()


def test_surface_interpolate_and_hessian_run_on_a_transformer(gpt2_run: lsdb.Catalog) -> None:
    cat = gpt2_run
    ckpts = cat.checkpoints("gpt")
    assert ckpts[0].n_tensors == 28  # lm_head.weight is tied to the embedding: stored once
    surface = cat.run("surface", "gpt:5", xnum=3, ynum=3, device="cpu")
    assert surface.arrays["loss"].shape == (3, 3)
    assert surface.scalars["center_loss"] < 5.6  # trained a little: below ln(259)
    line = cat.run("interpolate", "gpt:0", "gpt:5", steps=5, alpha_min=0.0, alpha_max=1.0, splits=["train"],
                   device="cpu")
    losses = line.arrays["train_loss"]
    assert losses[-1] < losses[0]
    hess = cat.run("hessian", "gpt:5", k=1, subset=8, trace=False, device="cpu")
    assert hess.scalars["lambda_max"] > 0
