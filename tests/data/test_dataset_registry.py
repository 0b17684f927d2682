"""Dataset specs: defaults filled in, the load cache, registry errors, import paths, the Dataset contract."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lsdb.data import Dataset, builtin_datasets, load_dataset, register_builtin_datasets, resolve_dataset_spec
from lsdb.data import registry as registry_module
from lsdb.data.base import tensors_digest
from lsdb.errors import BadInput
from lsdb.registry import FactoryRegistry
from lsdb.specs import Spec


@pytest.fixture
def datasets_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's module on sys.path with dataset factories."""
    (tmp_path / "my_data.py").write_text(
        textwrap.dedent("""
        import torch
        from lsdb.data import Dataset
        from lsdb.plugin import factory

        @factory
        def ramp(n: int = 10):
            x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
            return Dataset.from_arrays("ramp", (x, torch.arange(n) % 2), (x[:2], torch.tensor([0, 1])))

        @factory
        def not_a_dataset():
            return [1, 2]
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LSDB_TRUSTED_MODULES", "tests,my_data")
    yield "my_data"
    sys.modules.pop("my_data", None)


def test_builtins_register_through_a_plain_callback() -> None:
    seen: list[str] = []
    register_builtin_datasets(lambda name, factory: seen.append(name))
    assert seen == ["digits", "synthetic", "tensors", "mnist", "cifar10", "cifar100", "text"]
    assert builtin_datasets().names() == sorted(seen)


def test_defaults_are_filled_in_so_equivalent_specs_are_one() -> None:
    plain = load_dataset("digits")
    assert load_dataset("digits:seed=0,normalize=standard") is plain
    assert plain.spec == Spec("digits", {"image": False, "normalize": "standard", "seed": 0, "test_fraction": 0.2})
    assert str(resolve_dataset_spec({"name": "digits", "kwargs": {"seed": 3}})) == (
        "digits:image=false,normalize=standard,seed=3,test_fraction=0.2"
    )


def test_cache_keeps_the_most_recent_few(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "CACHE_SIZE", 2)
    a = load_dataset("synthetic:n=20")
    b = load_dataset("synthetic:n=20,seed=1")
    assert load_dataset("synthetic:n=20") is a  # a is now the most recent
    load_dataset("synthetic:n=20,seed=2")  # evicts b
    assert load_dataset("synthetic:n=20") is a
    assert load_dataset("synthetic:n=20,seed=1") is not b


def test_unknown_dataset_lists_available_ones() -> None:
    with pytest.raises(
        BadInput, match="unknown dataset 'cifar'; available: cifar10, cifar100, digits, mnist, synthetic, tensors"
    ):
        load_dataset("cifar")


def test_unknown_argument_names_accepted_ones() -> None:
    with pytest.raises(BadInput, match="unknown argument 'images'; accepted: image, test_fraction, seed, normalize"):
        load_dataset("digits:images=true")


def test_ill_typed_argument_is_bad_input() -> None:
    with pytest.raises(BadInput, match="'seed' must be int"):
        load_dataset("digits:seed=0.5")


def test_missing_required_argument_is_named() -> None:
    with pytest.raises(BadInput, match="missing required argument\\(s\\) path; e.g. tensors:path=..."):
        load_dataset("tensors")


def test_import_path_dataset(datasets_module: str) -> None:
    data = load_dataset(f"{datasets_module}:ramp:n=6")
    assert data.name == f"{datasets_module}:ramp" and data.spec.kwargs == {"n": 6}
    assert data.input_shape == (2,) and data.num_classes == 2 and len(data.train[0]) == 6
    with pytest.raises(BadInput, match="not an lsdb Dataset"):
        load_dataset(f"{datasets_module}:not_a_dataset")


def test_the_cache_is_keyed_by_the_factory_not_by_the_registry() -> None:
    reg: FactoryRegistry[Dataset] = FactoryRegistry("dataset")
    register_builtin_datasets(reg.register)
    assert load_dataset("synthetic:n=20", registry=reg) is load_dataset("synthetic:n=20")  # same factory
    other: FactoryRegistry[Dataset] = FactoryRegistry("dataset")
    other.register("synthetic", lambda n=20: load_dataset("digits"))
    assert load_dataset("synthetic:n=20", registry=other).name == "synthetic"
    assert load_dataset("synthetic:n=20", registry=other) is not load_dataset("synthetic:n=20")


def test_split_names_and_unknown_split() -> None:
    data = load_dataset("synthetic:n=20")
    assert data.split("train") is data.train and data.split("test") is data.test
    with pytest.raises(BadInput, match="unknown split 'val'; available: train, test"):
        data.split("val")


def test_digest_covers_dtype_shape_and_bytes() -> None:
    x = torch.arange(6, dtype=torch.float32)
    assert tensors_digest(x) == tensors_digest(x.clone())
    assert tensors_digest(x) != tensors_digest(x.reshape(2, 3))
    assert tensors_digest(x) != tensors_digest(x.double())
    assert tensors_digest(x, x[:0]) != tensors_digest(x)


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ((torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)), None, "train x has 3 examples but y has 4"),
        ((torch.zeros(3, 2), torch.tensor([0, -1, 2])), None, "train labels must be >= 0"),
        ((torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.long)), None, "labels must have shape \\(N,\\)"),
        (
            (torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)),
            (torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)),
            "train examples have shape \\(2,\\) but test examples \\(5,\\)",
        ),
    ],
)
def test_from_arrays_checks_shapes_and_labels(train, test, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        Dataset.from_arrays("toy", train, test or train)


def test_from_arrays_checks_labels_against_num_classes() -> None:
    with pytest.raises(BadInput, match="label 5 is out of range for 3 classes"):
        Dataset.from_arrays(
            "toy", (torch.zeros(2, 1), torch.tensor([0, 5])), (torch.zeros(1, 1), torch.tensor([0])), num_classes=3
        )
