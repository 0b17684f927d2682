"""Resolving a model spec (``resnet:depth=20,skip=false``) to an ``nn.Module``.

Built-in models register through `register_builtin_models`, the same callback-taking hook a
plugin implements (``register_models(register)``), so the zoo is an ordinary plugin. The registry
of every plugin's models (`lsdb.registry.Registries.models`) is passed in by the caller; without
one, `build_model` knows the zoo only (`builtin_models`). A spec may also name a factory by import
path, ``package.module:factory``. Every factory is called as
``factory(input_shape, num_classes, **kwargs)`` with the shape and class count of the dataset it
will see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lsdb.errors import BadInput
from lsdb.models.hf import hf
from lsdb.models.mlp import mlp
from lsdb.models.resnet import resnet
from lsdb.models.simple_cnn import simple_cnn
from lsdb.models.vgg import vgg
from lsdb.registry import FactoryRegistry
from lsdb.specs import Spec


def register_builtin_models(register: Callable[..., None]) -> None:
    """Register the zoo: ``mlp``, ``simple_cnn``, ``resnet``, ``vgg``, and ``hf`` (transformers models)."""
    register("mlp", mlp)
    register("simple_cnn", simple_cnn)
    register("resnet", resnet)
    register("vgg", vgg)
    register("hf", hf)


def builtin_models() -> FactoryRegistry[nn.Module]:
    """A registry of the zoo alone (what `build_model` uses when given no registry)."""
    registry: FactoryRegistry[nn.Module] = FactoryRegistry("model", fixed_args=2)
    register_builtin_models(registry.register)
    return registry


def build_model(
    spec: Spec | str | dict[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    registry: FactoryRegistry[nn.Module] | None = None,
    *,
    seed: int | None = None,
) -> nn.Module:
    """Validate `spec` and build its model for inputs of `input_shape` and `num_classes` outputs.

    Unknown names, unknown or ill-typed arguments are `BadInput`. With `seed`, the initial
    weights are a function of the seed alone and the global RNG is left untouched.
    """
    registry = registry if registry is not None else builtin_models()
    spec = registry.validate(spec)
    factory = registry.factory(spec.name)
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise BadInput(f"model '{spec.name}': input_shape must be a sequence of ints, got {input_shape!r}") from None
    if seed is None:
        model = factory(shape, num_classes, **spec.kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = factory(shape, num_classes, **spec.kwargs)
    if not isinstance(model, nn.Module):
        raise BadInput(f"model '{spec.name}': factory returned {type(model).__name__}, not a torch.nn.Module")
    return model
