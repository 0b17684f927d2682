"""The ``text`` dataset: local files in every supported layout, a model folder's tokenizer or bytes, packed blocks,
seeded split and digest; a tokenizer larger than the model's embedding is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lsdb
from lsdb.data import load_dataset
from lsdb.data.text import text
from lsdb.errors import BadInput


def _docs(corpus: Path) -> list[str]:
    return [p for p in corpus.read_text().split("\n\n") if p.strip()][:200]


def test_plain_jsonl_csv_parquet_and_a_saved_hf_dataset_give_the_same_blocks(corpus: Path, tmp_path: Path) -> None:
    import pandas as pd

    docs = _docs(corpus)
    (tmp_path / "a.txt").write_text("\n".join(docs))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs))
    pd.DataFrame({"text": docs}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"text": docs}).to_parquet(tmp_path / "a.parquet")
    import datasets

    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(tmp_path / "saved"))
    ref = text(str(tmp_path / "a.jsonl"), block=32)
    for path in ("a.csv", "a.parquet", "saved"):
        other = text(str(tmp_path / path), block=32)
        assert other.digest("train") == ref.digest("train") and other.digest("test") == ref.digest("test")
    whole = text(str(tmp_path / "a.txt"), block=32)  # one document: no end-of-text tokens between paragraphs
    assert whole.train[0].dtype == torch.int64 and whole.input_shape == (32,)
    assert len(ref.train[0]) + len(ref.test[0]) == (sum(len(d.encode()) + 1 for d in docs)) // 32


def test_the_split_is_seeded_and_the_spec_is_a_dataset_like_the_others(corpus: Path) -> None:
    a = load_dataset(f"text:path={corpus},block=16,seed=1")
    b = load_dataset(f"text:path={corpus},block=16,seed=1")
    c = load_dataset(f"text:path={corpus},block=16,seed=2")
    assert a.digest("train") == b.digest("train") != c.digest("train")
    assert a.spec.kwargs["task"] == "causal-lm" and a.default_loss == "token_cross_entropy"
    assert torch.equal(a.train[1], a.train[0][:, 1:])


def _tokenizer_folder(corpus: Path, folder: Path, vocab: int = 300) -> Path:
    """A real BPE tokenizer trained offline on the corpus, saved as a model folder's tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train([str(corpus)], trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<eos>", "<mask>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", mask_token="<mask>")
    fast.save_pretrained(str(folder))
    return folder


def test_a_model_folders_tokenizer_is_used_and_a_larger_vocabulary_is_refused(corpus: Path, tmp_path: Path,
                                                                              db_url: str, store_root: Path) -> None:
    folder = _tokenizer_folder(corpus, tmp_path / "tok")
    ds = text(str(corpus), tokenizer=str(folder), block=32)
    assert ds.num_classes == 300 and int(ds.train[0].max()) < 300
    assert text(str(corpus), tokenizer=str(folder), block=32).digest("train") == ds.digest("train")
    cat = lsdb.open_catalog(db_url, store_root)
    with pytest.raises(BadInput, match="300 tokens but the model's embedding has 259 rows"):
        with cat.record("mismatch", "hf:config=gpt2,n_layer=1,n_embd=16,n_head=2,vocab_size=259",
                        f"text:path={corpus},tokenizer={folder},block=32") as rec:
            rec.checkpoint({"w": torch.zeros(1)}, step=0)
    cat.close()


def test_bad_text_inputs_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        text(str(tmp_path / "missing.txt"))
    (tmp_path / "rows.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(BadInput, match="no field 'text'"):
        text(str(tmp_path / "rows.jsonl"))
    (tmp_path / "tiny.txt").write_text("too short")
    with pytest.raises(BadInput, match="fewer than 2 blocks"):
        text(str(tmp_path / "tiny.txt"), block=64)
