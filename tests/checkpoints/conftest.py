"""Fixtures for checkpoint tests: a tiny model with BatchNorm (so it has integer buffers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def make_model(seed: int = 0) -> nn.Module:
    """A tiny conv net with a BatchNorm layer, so its state dict holds float and int64 tensors."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))


@pytest.fixture
def tiny_model() -> nn.Module:
    return make_model()


@pytest.fixture
def state_dict(tiny_model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tiny_model.state_dict().items()}
