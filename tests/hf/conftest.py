"""Hugging Face tests: transformers offline, a small real corpus from Python's own library."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: real English prose that ships with every Python: the email package's documentation strings
CORPUS_FILES = ("email/message.py", "email/feedparser.py", "email/utils.py")
TINY_GPT2 = "hf:config=gpt2,n_layer=2,n_embd=32,n_head=2,n_positions=64"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A plain-text file of ~100 KB of Python's library source and docstrings."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join((stdlib / f).read_text(encoding="utf-8") for f in CORPUS_FILES), encoding="utf-8")
    return path
