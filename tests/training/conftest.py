"""Fixtures for the training tests: a small MLP spec, digits, and reading checkpoints back."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load

from lsdb.data import Dataset, load_dataset

SMALL_MLP = "mlp:widths=[16]"


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


def checkpoint_tensors(catalog, record) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """A checkpoint's tensors, read from its blob in the store with safetensors."""
    return load(catalog.objects.read_bytes(record.blob_digest))


def final_tensors(catalog, run: str) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """The tensors of a run's last checkpoint (highest step)."""
    last = max(catalog.checkpoints.list(run), key=lambda c: (c.step, c.id))
    return checkpoint_tensors(catalog, last)


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Tiny models train fastest on one thread, and a busy 2-core CI box makes two threads thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
