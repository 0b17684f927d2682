"""Fixtures for the model zoo tests: the datasets each model is built against."""

from __future__ import annotations

import pytest

from lsdb.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def digits_flat() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_image() -> Dataset:
    return load_dataset("digits:image=true")


@pytest.fixture(scope="session")
def cifar_shaped() -> Dataset:
    """A 3x32x32 synthetic stand-in for CIFAR-10 (10 classes, 40 examples)."""
    return load_dataset("synthetic:shape=[3,32,32],classes=10,n=40")
