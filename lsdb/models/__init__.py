"""The model zoo and model specs: ``mlp``, ``simple_cnn``, ``resnet`` (with or without skips), ``vgg``."""

from lsdb.models.registry import build_model, builtin_models, register_builtin_models

__all__ = ["build_model", "builtin_models", "register_builtin_models"]
