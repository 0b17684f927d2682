"""The ``text`` dataset: local text files tokenized into fixed-length blocks for language models.

Sources (``path``): a plain-text file (``.txt``, or any other suffix: read as UTF-8), JSON lines
(``.jsonl``, the `field` of each object), ``.csv`` / ``.parquet`` (the `field` column), a folder
saved by HF ``datasets`` (``save_to_disk``; its train split or only split), or a folder of
``.txt`` files. Documents are tokenized with ``tokenizer=DIR`` (a model folder's own tokenizer,
read offline with ``AutoTokenizer``) or, without one, bytes: UTF-8 bytes are tokens 0..255.

Tasks (``task``):

* ``causal-lm``: the documents' tokens, joined by the end-of-text token where the tokenizer has
  one, cut into blocks of `block` tokens (the remainder dropped); ``x`` is a block (N, block),
  ``y`` the next tokens (N, block - 1), scored with the token-level mean cross-entropy;
* ``masked-lm``: the same blocks with a fixed mask drawn with `seed`: `mask_prob` of the
  positions (at least one per block) are replaced by the mask token (always, no 80/10/10, so the
  loss is a function of the weights alone); ``y`` holds the original tokens there and -100 elsewhere;
* ``sequence-classification``: one example per document, truncated or padded (pad id) to
  `block` tokens, labelled by the `label_field` (integers, or strings numbered in sorted order).

Blocks (or examples) are split into train and test with a seeded split (`test_fraction`, `seed`);
`max_examples` keeps the first blocks only (before the split). ``num_classes`` is the tokenizer's
vocabulary (the number of labels for classification): a model whose embedding has fewer rows is
refused before any work. The digest hashes the token tensors, like every other dataset's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsdb.data.base import Dataset, split_indices
from lsdb.errors import BadInput
from lsdb.specs import Spec

TASKS = ("causal-lm", "masked-lm", "sequence-classification")
IGNORE_INDEX = -100
BYTE_VOCAB = 256
#: the byte tokenizer's extra tokens: end of text, mask, padding
BYTE_EOS, BYTE_MASK, BYTE_PAD = 256, 257, 258


def text(path: str, tokenizer: str | None = None, task: str = "causal-lm", block: int = 64,
         test_fraction: float = 0.1, seed: int = 0, field: str = "text", label_field: str = "label",
         mask_prob: float = 0.15, max_examples: int | None = None) -> Dataset:
    """Text from a local file or folder, tokenized (a model folder's tokenizer, or bytes) into blocks."""
    if task not in TASKS:
        raise BadInput(f"dataset 'text': unknown task '{task}'; available: {', '.join(TASKS)}")
    if block < 2:
        raise BadInput(f"dataset 'text': block must be at least 2 tokens, got {block}")
    records = read_records(Path(path).expanduser(), field, label_field if task == "sequence-classification" else None)
    tok = Tokenizer(tokenizer)
    if task == "sequence-classification":
        x_all, y_all, n_classes = _classification(records, tok, block)
    else:
        blocks = _blocks(records, tok, block)
        if max_examples is not None:
            blocks = blocks[:max_examples]
        if task == "causal-lm":
            x_all, y_all = blocks, blocks[:, 1:].clone()
        else:
            x_all, y_all = _masked(blocks, tok, mask_prob, seed)
        n_classes = tok.vocab_size
    if max_examples is not None:
        x_all, y_all = x_all[:max_examples], y_all[:max_examples]
    train_idx, test_idx = split_indices(len(x_all), test_fraction, seed, "text")
    tr, te = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return Dataset(
        name="text",
        spec=Spec("text"),
        train=(x_all[tr].contiguous(), y_all[tr].contiguous()),
        test=(x_all[te].contiguous(), y_all[te].contiguous()),
        input_shape=(int(x_all.shape[1]),),
        num_classes=int(n_classes),
        task="classification" if task == "sequence-classification" else task,  # type: ignore[arg-type]
    )


def _loss_for_spec(kwargs: dict[str, Any]) -> str:
    """The loss a ``text`` spec implies (read by `lsdb.runs` before the dataset is loaded)."""
    return "cross_entropy" if kwargs.get("task") == "sequence-classification" else "token_cross_entropy"


text.loss_for_spec = _loss_for_spec  # type: ignore[attr-defined]


class Tokenizer:
    """A model folder's tokenizer (offline) or the byte-level fallback."""

    def __init__(self, folder: str | None) -> None:
        self.hf: Any = None
        if folder is None:
            self.vocab_size = BYTE_VOCAB + 3
            self.eos, self.mask, self.pad = BYTE_EOS, BYTE_MASK, BYTE_PAD
            return
        from lsdb.hfcompat import require_transformers

        transformers = require_transformers()
        where = Path(folder).expanduser()
        if not where.is_dir():
            raise BadInput(f"dataset 'text': tokenizer folder not found: {where}")
        try:
            self.hf = transformers.AutoTokenizer.from_pretrained(str(where), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
            raise BadInput(f"dataset 'text': {where}: no usable tokenizer ({str(exc).splitlines()[0][:160]})") from None
        self.vocab_size = len(self.hf)
        self.eos = self.hf.eos_token_id if self.hf.eos_token_id is not None else self.hf.sep_token_id
        self.mask = self.hf.mask_token_id
        pad = self.hf.pad_token_id
        self.pad = pad if pad is not None else (self.eos if self.eos is not None else 0)

    def encode(self, text: str) -> list[int]:
        if self.hf is None:
            return list(text.encode("utf-8"))
        ids: list[int] = self.hf(text, add_special_tokens=False)["input_ids"]
        return ids


def read_records(path: Path, field: str, label_field: str | None) -> list[tuple[str, Any]]:
    """(text, label) pairs from a file or folder (label None without `label_field`)."""
    if not path.exists():
        raise BadInput(f"dataset 'text': no such file or folder: {path}")
    rows: list[dict[str, Any]]
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            rows = _hf_saved(path)
        else:
            files = sorted(path.rglob("*.txt"))
            if not files:
                raise BadInput(f"dataset 'text': {path}: a folder with neither a saved HF dataset nor .txt files")
            rows = [{field: f.read_text(encoding="utf-8", errors="replace")} for f in files]
    else:
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif suffix in (".csv", ".parquet"):
            import pandas as pd

            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            rows = frame.to_dict("records")
        else:
            rows = [{field: path.read_text(encoding="utf-8", errors="replace")}]
    if not rows:
        raise BadInput(f"dataset 'text': {path} holds no records")
    missing = [k for k in (field, label_field) if k is not None and k not in rows[0]]
    if missing:
        raise BadInput(f"dataset 'text': {path}: no field '{missing[0]}' (fields: {', '.join(map(str, rows[0]))})")
    return [(str(r[field]), r[label_field] if label_field else None) for r in rows]


def _hf_saved(path: Path) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise BadInput("dataset 'text': reading a saved HF dataset needs `datasets`: pip install 'lsdb[hf]'") from None
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return [dict(r) for r in loaded]


def _blocks(records: list[tuple[str, Any]], tok: Tokenizer, block: int) -> torch.Tensor:
    ids: list[int] = []
    for doc, _ in records:
        ids.extend(tok.encode(doc))
        if tok.eos is not None:
            ids.append(int(tok.eos))
    n = len(ids) // block
    if n < 2:
        raise BadInput(f"dataset 'text': {len(ids)} tokens make fewer than 2 blocks of {block}")
    return torch.tensor(ids[: n * block], dtype=torch.int64).view(n, block)


def _masked(blocks: torch.Tensor, tok: Tokenizer, prob: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if tok.mask is None:
        raise BadInput("dataset 'text': task=masked-lm needs a tokenizer with a mask token")
    if not 0.0 < prob < 1.0:
        raise BadInput(f"dataset 'text': mask_prob must be between 0 and 1, got {prob}")
    rng = np.random.RandomState(seed)
    chosen = torch.from_numpy(rng.random_sample(tuple(blocks.shape)) < prob)
    first = torch.from_numpy(rng.randint(0, blocks.shape[1], size=len(blocks)))
    chosen[torch.arange(len(blocks)), first] = True  # at least one scored token per block
    x = torch.where(chosen, torch.full_like(blocks, int(tok.mask)), blocks)
    y = torch.where(chosen, blocks, torch.full_like(blocks, IGNORE_INDEX))
    return x, y


def _classification(records: list[tuple[str, Any]], tok: Tokenizer,
                    block: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    labels = [r[1] for r in records]
    if all(isinstance(v, (int, np.integer)) for v in labels):
        y = torch.tensor([int(v) for v in labels], dtype=torch.int64)
        n_classes = int(y.max()) + 1
    else:
        names = sorted({str(v) for v in labels})
        index = {n: i for i, n in enumerate(names)}
        y = torch.tensor([index[str(v)] for v in labels], dtype=torch.int64)
        n_classes = len(names)
    x = torch.full((len(records), block), int(tok.pad), dtype=torch.int64)
    for i, (doc, _) in enumerate(records):
        ids = tok.encode(doc)[:block]
        if tok.hf is not None and tok.hf.cls_token_id is not None:  # BERT-style: [CLS] ... [SEP]
            ids = [tok.hf.cls_token_id, *ids[: block - 2], tok.hf.sep_token_id]
        x[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return x, y, n_classes
