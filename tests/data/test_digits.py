"""scikit-learn digits: split sizes, determinism, normalization and the split digest."""

from __future__ import annotations

import pytest
import torch

from lsdb.data import clear_dataset_cache, load_dataset
from lsdb.errors import BadInput


def test_default_split_is_1437_train_360_test() -> None:
    data = load_dataset("digits")
    assert data.train[0].shape == (1437, 64) and data.test[0].shape == (360, 64)
    assert data.train[0].dtype == torch.float32 and data.train[1].dtype == torch.int64
    assert data.input_shape == (64,) and data.num_classes == 10
    assert data.task == "classification" and data.default_loss == "cross_entropy"
    assert set(data.train[1].tolist()) == set(range(10))


def test_image_option_reshapes_the_same_examples() -> None:
    flat, image = load_dataset("digits"), load_dataset("digits:image=true")
    assert image.input_shape == (1, 8, 8)
    assert torch.equal(image.train[0].reshape(-1, 64), flat.train[0])
    assert torch.equal(image.test[1], flat.test[1])


def test_split_is_deterministic_and_seeded() -> None:
    first = load_dataset("digits:normalize=none")
    clear_dataset_cache()
    again = load_dataset("digits:normalize=none")
    other = load_dataset("digits:normalize=none,seed=1")
    assert again is not first
    assert torch.equal(first.train[0], again.train[0]) and torch.equal(first.test[1], again.test[1])
    assert not torch.equal(first.test[0], other.test[0])


def test_test_fraction_sets_the_split_size() -> None:
    data = load_dataset("digits:test_fraction=0.5")
    assert (len(data.train[0]), len(data.test[0])) == (898, 899)


def test_standard_normalization_uses_train_statistics() -> None:
    data = load_dataset("digits")
    x = data.train[0]
    varying = x.std(dim=0) > 0
    assert torch.allclose(x.mean(dim=0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(x.std(dim=0)[varying], torch.ones(int(varying.sum())), atol=1e-4)
    assert not torch.allclose(data.test[0].mean(dim=0), torch.zeros(64), atol=1e-3)


def test_scale_and_none_normalizations() -> None:
    raw, scaled = load_dataset("digits:normalize=none"), load_dataset("digits:normalize=scale")
    assert raw.train[0].max() == 16 and raw.train[0].min() == 0
    assert torch.equal(scaled.train[0], raw.train[0] / 16)


def test_digest_is_stable_across_loads_and_tracks_normalization_and_seed() -> None:
    digest = load_dataset("digits").digest("train")
    clear_dataset_cache()
    assert load_dataset("digits").digest("train") == digest
    assert len(digest) == 64 and digest != load_dataset("digits").digest("test")
    assert load_dataset("digits:normalize=scale").digest("train") != digest
    assert load_dataset("digits:seed=1").digest("train") != digest
    assert load_dataset("digits:image=true").digest("train") != digest


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("digits:normalize=zscore", "normalize must be one of standard, scale, none"),
        ("digits:test_fraction=1.0", "test_fraction must be between 0 and 1"),
        ("digits:test_fraction=0", "test_fraction must be between 0 and 1"),
    ],
)
def test_bad_options_are_bad_input(spec: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_dataset(spec)
