"""Fixtures for the landscape tests: small digits splits and small zoo models in float64."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lsdb.data import Dataset, load_dataset
from lsdb.models import build_model


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_image() -> Dataset:
    return load_dataset("digits:image=true")


def make_model(spec: str, data: Dataset, seed: int = 0, warm_bn: Tensor | None = None) -> nn.Module:
    """A zoo model in float64 and eval mode; `warm_bn` inputs give BatchNorm non-trivial running stats."""
    model = build_model(spec, data.input_shape, data.num_classes, seed=seed).double()
    if warm_bn is not None:
        model.train()
        with torch.no_grad():
            for xb in warm_bn.double().split(32):
                model(xb)
    return model.eval()
