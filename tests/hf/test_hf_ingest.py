"""Ingest of folders written by transformers itself: save_pretrained (single, sharded, .bin), the Trainer, PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors

import lsdb
from lsdb.data.text import text
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2


@pytest.fixture
def api(db_url: str, store_root: Path) -> lsdb.Catalog:
    cat = lsdb.open_catalog(db_url, store_root)
    yield cat
    cat.close()


@pytest.fixture
def gpt2(tmp_path: Path) -> torch.nn.Module:
    model = build_model(TINY_GPT2, (32,), 259, seed=0)
    model._forward_hooks.clear()  # save exactly what transformers saves
    return model


def _stored(api: lsdb.Catalog, ckpt_id: int) -> dict[str, torch.Tensor]:
    digest = next(c.tensor_digest for r in api.runs() for c in api.checkpoints(r.name) if c.id == ckpt_id)
    return load_safetensors(api._db.objects.read_bytes(digest))


def test_model_folders_single_sharded_and_bin_are_the_same_checkpoint(api: lsdb.Catalog, gpt2: torch.nn.Module,
                                                                      tmp_path: Path) -> None:
    gpt2.save_pretrained(tmp_path / "single")
    gpt2.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "config.json").write_text((tmp_path / "single" / "config.json").read_text())
    torch.save(gpt2.state_dict(), bin_dir / "pytorch_model.bin")  # tied: lm_head shares the embedding's storage

    single = api.ingest([tmp_path / "single"], "single")
    sharded = api.ingest([tmp_path / "sharded"], "sharded")
    from_bin = api.ingest([bin_dir], "bin")
    reports = (single, sharded, from_bin)
    assert all(r.count("new") == 1 for r in reports), [r.outcomes for r in reports]
    ids = [r.outcomes[0].checkpoint.id for r in reports]
    digests = {r.outcomes[0].checkpoint.tensor_digest for r in reports}
    assert len(digests) == 1  # streamed shards give the canonical bytes of the loaded weights
    stored = _stored(api, ids[0])
    assert "lm_head.weight" not in stored and len(stored) == 28  # tied weights stored once
    for name, tensor in gpt2.state_dict().items():
        if name != "lm_head.weight":
            assert torch.equal(stored[name], tensor)
    run = api.get_run("sharded")
    assert run.model_spec["name"] == "hf" and run.model_spec["kwargs"]["task"] == "causal-lm"


def test_a_folder_from_transformers_runs_a_surface(api: lsdb.Catalog, gpt2: torch.nn.Module, tmp_path: Path,
                                                   corpus: Path) -> None:
    gpt2.save_pretrained(tmp_path / "m")
    api.ingest([tmp_path / "m"], "m", dataset=f"text:path={corpus},block=32,max_examples=16")
    result = api.run("surface", "m", xnum=3, ynum=3, device="cpu")
    assert result.arrays["loss"].shape == (3, 3)


def test_bad_folders_name_what_is_wrong(api: lsdb.Catalog, gpt2: torch.nn.Module, tmp_path: Path) -> None:
    gpt2.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[1]
    (tmp_path / "sharded" / victim).unlink()
    report = api.ingest([tmp_path / "sharded"], "broken", model=None)
    assert report.count("failed") == 1 and f"shard {victim}" in report.outcomes[0].message
    assert api.checkpoints("broken") == [] if any(r.name == "broken" for r in api.runs()) else True

    (tmp_path / "unknown").mkdir()
    (tmp_path / "unknown" / "config.json").write_text('{"model_type": "no-such-arch"}')
    (tmp_path / "unknown" / "model.safetensors").write_bytes((tmp_path / "sharded" / "config.json").read_bytes())
    with pytest.raises(lsdb.BadInput, match="not known to transformers"):
        api.ingest([tmp_path / "unknown"], "unknown")


def test_a_sharded_folder_with_a_nan_tensor_is_flagged_naming_the_tensor_and_its_shard(
        api: lsdb.Catalog, gpt2: torch.nn.Module, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    gpt2.save_pretrained(tmp_path / "clean", max_shard_size="40KB")
    gpt2.save_pretrained(tmp_path / "poisoned", max_shard_size="40KB")
    index = json.loads((tmp_path / "poisoned" / "model.safetensors.index.json").read_text())
    name = "transformer.h.1.mlp.c_fc.weight"
    shard = tmp_path / "poisoned" / index["weight_map"][name]
    assert len(set(index["weight_map"].values())) > 2
    tensors = load_file(shard)
    tensors[name][3, 5] = float("nan")  # one element, in the middle of one tensor of one shard
    save_file(tensors, shard, metadata={"format": "pt"})

    clean = api.ingest([tmp_path / "clean"], "clean").outcomes[0]
    poisoned = api.ingest([tmp_path / "poisoned"], "poisoned").outcomes[0]
    assert clean.checkpoint is not None and not clean.checkpoint.nonfinite
    assert poisoned.status == "new" and poisoned.checkpoint is not None and poisoned.checkpoint.nonfinite
    note = next(n for n in poisoned.notes if "NaN" in n)
    assert "\n" not in note and repr(name) in note and str(shard) in note and "--allow-nonfinite" in note
    stored = _stored(api, poisoned.checkpoint.id)  # the whole checkpoint is stored, NaN included, and flagged
    assert torch.isnan(stored[name][3, 5]) and int(torch.isnan(stored[name]).sum()) == 1
    with pytest.raises(lsdb.BadInput, match="NaN or Inf.*allow-nonfinite"):
        api.run("layer-norms", str(poisoned.checkpoint.id))


def test_a_trainer_output_folder_is_one_trajectory_with_its_logged_metrics(api: lsdb.Catalog, gpt2: torch.nn.Module,
                                                                           tmp_path: Path, corpus: Path) -> None:
    from transformers import Trainer, TrainingArguments

    ds = text(str(corpus), block=32, max_examples=32)
    rows = [{"input_ids": x, "labels": x} for x in ds.train[0]]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, save_steps=2, logging_steps=1,
                             per_device_train_batch_size=8, learning_rate=1e-3, report_to=[], use_cpu=True,
                             disable_tqdm=True)
    Trainer(model=gpt2, args=args, train_dataset=rows).train()
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    report = api.ingest([tmp_path / "out"], "trainer")
    assert report.count("new") == 2, report.outcomes
    steps = [c.step for c in api.checkpoints("trainer")]
    assert steps == [2, 4]
    losses = [m for m in api.metrics("trainer") if m.key == "loss"]
    assert [m.step for m in losses] == [1, 2, 3, 4]


def test_a_peft_lora_adapter_is_stored_merged_and_as_the_adapter(api: lsdb.Catalog, gpt2: torch.nn.Module,
                                                                  tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    gpt2.save_pretrained(tmp_path / "base")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True, init_lora_weights=False)
    peft_model = get_peft_model(gpt2, config)
    peft_model.peft_config["default"].base_model_name_or_path = str(tmp_path / "base")
    peft_model.save_pretrained(tmp_path / "adapter")
    expected = peft_model.merge_and_unload().state_dict()

    report = api.ingest([tmp_path / "adapter"], "lora", model=f"hf:path={tmp_path / 'base'}")
    assert report.count("new") == 1, report.outcomes
    ckpts = api.checkpoints("lora")
    labels = sorted(c.label or "" for c in ckpts)
    assert labels == ["adapter", "merged"]
    merged = next(c for c in ckpts if c.label == "merged")
    adapter = next(c for c in ckpts if c.label == "adapter")
    assert adapter.meta["base_model"] == str(tmp_path / "base")
    stored = _stored(api, merged.id)
    for name, tensor in expected.items():
        if name != "lm_head.weight":
            torch.testing.assert_close(stored[name], tensor, rtol=1e-5, atol=1e-6)


def test_the_ingest_benchmark_quick_mode_streams_within_a_shard() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_hf_ingest.py"
    spec = importlib.util.spec_from_file_location("bench_hf_ingest", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--quick"])
    assert figures["n_tensors"] > 100
    assert figures["peak_rss_above_imports_mb"] < 1.2 * figures["largest_shard_mb"] + figures["size_mb"]
