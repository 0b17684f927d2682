"""Datasets and dataset specs: digits, synthetic, tensor files, MNIST and CIFAR files on disk."""

from lsdb.data.base import Dataset
from lsdb.data.registry import (
    builtin_datasets,
    clear_dataset_cache,
    load_dataset,
    register_builtin_datasets,
    resolve_dataset_spec,
)

__all__ = [
    "Dataset",
    "clear_dataset_cache",
    "builtin_datasets",
    "load_dataset",
    "register_builtin_datasets",
    "resolve_dataset_spec",
]
