"""Synthetic datasets: shapes, tasks and seeded determinism of blobs, spirals and teacher."""

from __future__ import annotations

import pytest
import torch

from lsdb.data import clear_dataset_cache, load_dataset
from lsdb.errors import BadInput


@pytest.mark.parametrize(
    ("spec", "shape", "classes"),
    [
        ("synthetic", (2,), 2),
        ("synthetic:classes=4,dim=6,n=200", (6,), 4),
        ("synthetic:kind=spirals,classes=3,dim=3,n=300", (3,), 3),
        ("synthetic:kind=teacher,task=classification,classes=3,dim=5", (5,), 3),
    ],
)
def test_classification_kinds(spec: str, shape: tuple[int, ...], classes: int) -> None:
    data = load_dataset(spec)
    n = data.spec.kwargs["n"]
    assert data.input_shape == shape and data.num_classes == classes and data.task == "classification"
    assert len(data.train[0]) + len(data.test[0]) == n and len(data.test[0]) == n // 5
    assert data.train[1].dtype == torch.int64 and int(data.train[1].max()) < classes


def test_teacher_defaults_to_regression_with_2d_targets() -> None:
    data = load_dataset("synthetic:kind=teacher,dim=4,n=100")
    assert data.task == "regression" and data.default_loss == "mse" and data.num_classes == 1
    assert data.train[1].shape == (80, 1) and data.train[1].dtype == torch.float32


def test_image_shaped_blobs_stand_in_for_cifar() -> None:
    data = load_dataset("synthetic:shape=[3,32,32],classes=10,n=50")
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.train[0].shape == (40, 3, 32, 32) and data.train[0].dtype == torch.float32


def test_blobs_are_separable_at_low_noise() -> None:
    data = load_dataset("synthetic:classes=3,n=300,noise=0.01")
    x, y = data.train
    centres = torch.stack([x[y == c].mean(0) for c in range(3)])
    nearest = torch.cdist(x, centres).argmin(1)
    assert torch.equal(nearest, y)


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = load_dataset("synthetic:kind=spirals,n=100")
    clear_dataset_cache()
    again = load_dataset("synthetic:kind=spirals,n=100")
    other = load_dataset("synthetic:kind=spirals,n=100,seed=1")
    assert torch.equal(first.train[0], again.train[0]) and first.digest("test") == again.digest("test")
    assert not torch.equal(first.train[0], other.train[0])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:kind=moons", "unknown kind 'moons'; available: blobs, spirals, teacher"),
        ("synthetic:kind=spirals,shape=[3,8,8]", "spirals are two-dimensional"),
        ("synthetic:kind=spirals,dim=1", "spirals need dim >= 2"),
        ("synthetic:task=regression", "use kind=teacher for regression"),
        ("synthetic:classes=1", "classes must be at least 2"),
        ("synthetic:n=1", "need n >= 2"),
        ("synthetic:shape=[3,0,4]", "shape must be positive"),
    ],
)
def test_bad_options_are_bad_input(spec: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_dataset(spec)
