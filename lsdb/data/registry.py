"""Resolving a dataset spec (``digits:image=true``) to a loaded `Dataset`.

Built-in datasets register through `register_builtin_datasets`, the same callback-taking hook
a plugin implements (``register_datasets(register)``). A spec may also name any factory by
import path, ``package.module:factory``, returning a `Dataset`. `load_dataset` fills in every
default, so ``digits`` and ``digits:seed=0`` are one spec, and keeps the last few datasets
in memory because analyses ask for the same one again and again.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from lsdb.data.base import Dataset
from lsdb.data.cifar import cifar10, cifar100
from lsdb.data.digits import digits
from lsdb.data.mnist import mnist
from lsdb.data.synthetic import synthetic
from lsdb.data.tensors import tensors
from lsdb.data.text import text
from lsdb.errors import BadInput
from lsdb.registry import FactoryRegistry
from lsdb.specs import Spec

#: How many loaded datasets `load_dataset` keeps (a CIFAR training set is ~600 MB).
CACHE_SIZE = 4
_cache: OrderedDict[str, Dataset] = OrderedDict()
_cache_lock = threading.Lock()


def register_builtin_datasets(register: Callable[..., None]) -> None:
    """Register ``digits``, ``synthetic``, ``tensors``, ``mnist``, ``cifar10``, ``cifar100`` and ``text``."""
    register("digits", digits)
    register("synthetic", synthetic)
    register("tensors", tensors)
    register("mnist", mnist)
    register("cifar10", cifar10)
    register("cifar100", cifar100)
    register("text", text)


def builtin_datasets() -> FactoryRegistry[Dataset]:
    """A registry of the built-in datasets alone (what `load_dataset` uses when given no registry)."""
    registry: FactoryRegistry[Dataset] = FactoryRegistry("dataset", fixed_args=0)
    register_builtin_datasets(registry.register)
    return registry


def resolve_dataset_spec(spec: Spec | str | dict[str, Any], registry: FactoryRegistry[Dataset] | None = None) -> Spec:
    """The validated spec with every default argument filled in: the form stored and compared."""
    registry = registry if registry is not None else builtin_datasets()
    spec = registry.validate(spec)
    kwargs = dict(spec.kwargs)
    for name, param in registry.accepted_kwargs(spec.name).items():
        if name not in kwargs and param.default is not inspect.Parameter.empty:
            kwargs[name] = param.default
    missing = [n for n, p in registry.accepted_kwargs(spec.name).items() if n not in kwargs]
    if missing:
        raise BadInput(
            f"dataset '{spec.name}': missing required argument(s) {', '.join(missing)}; "
            f"e.g. {spec.name}:{missing[0]}=..."
        )
    return Spec(spec.name, {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()})


def load_dataset(spec: Spec | str | dict[str, Any], registry: FactoryRegistry[Dataset] | None = None) -> Dataset:
    """Load the dataset a spec names; the result's `spec` has all defaults filled in.

    Loaded datasets are cached (the last `CACHE_SIZE`, keyed by the factory and the canonical spec
    JSON); the cache never re-reads files, so call `clear_dataset_cache` after changing one.
    """
    reg = registry if registry is not None else builtin_datasets()
    full = resolve_dataset_spec(spec, reg)
    factory = reg.factory(full.name)
    origin = f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', repr(factory))}"
    key = origin + json.dumps(full.to_json(), sort_keys=True, default=repr)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    dataset = factory(**reg.validate(full).kwargs)  # validate: lists back to typed tuples
    if not isinstance(dataset, Dataset):
        raise BadInput(f"dataset '{full.name}': factory returned {type(dataset).__name__}, not an lsdb Dataset")
    dataset = dataclasses.replace(dataset, name=full.name, spec=full)
    with _cache_lock:
        _cache[key] = dataset
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset


def clear_dataset_cache() -> None:
    """Forget every dataset `load_dataset` keeps in memory."""
    with _cache_lock:
        _cache.clear()
