"""Fixtures for the dataset tests: every test starts with an empty dataset cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lsdb.data import clear_dataset_cache


@pytest.fixture(autouse=True)
def _fresh_dataset_cache() -> Iterator[None]:
    clear_dataset_cache()
    yield
    clear_dataset_cache()
