"""`LsdbCallback` with a real Trainer on a tiny GPT-2."""

from __future__ import annotations

from pathlib import Path

import pytest

import lsdb
from lsdb.data.text import text
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2


def test_the_callback_records_hyperparameters_metrics_and_checkpoints(db_url: str, store_root: Path, corpus: Path,
                                                                      tmp_path: Path) -> None:
    from transformers import Trainer, TrainingArguments

    from lsdb.integrations.hf import LsdbCallback

    cat = lsdb.open_catalog(db_url, store_root)
    ds = text(str(corpus), block=32, max_examples=32)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0)
    model._forward_hooks.clear()  # the Trainer wants transformers' own outputs
    rows = [{"input_ids": x, "labels": x} for x in ds.train[0]]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, save_steps=2, logging_steps=1,
                             per_device_train_batch_size=8, learning_rate=1e-3, report_to=[], use_cpu=True,
                             disable_tqdm=True, seed=7)
    callback = LsdbCallback("hf-run", dataset=f"text:path={corpus},block=32,max_examples=32", catalog=cat)
    Trainer(model=model, args=args, train_dataset=rows, callbacks=[callback]).train()

    run = cat.get_run("hf-run")
    assert run.status == "complete"
    assert run.params["learning_rate"] == pytest.approx(1e-3) and run.params["seed"] == 7
    assert run.model_spec["name"] == "hf" and run.loss == "token_cross_entropy"
    assert [c.step for c in cat.checkpoints("hf-run")] == [0, 2, 4]
    losses = [m for m in cat.metrics("hf-run") if m.key == "loss"]
    assert [m.step for m in losses] == [1, 2, 3, 4]
    # the recorded run is analysable as it is
    result = cat.run("interpolate", "hf-run:0", "hf-run:4", steps=3, alpha_min=0.0, alpha_max=1.0,
                     splits=["train"], device="cpu")
    assert result.arrays["train_loss"][-1] < result.arrays["train_loss"][0]
    cat.close()
