"""What a dataset is: two splits of tensors plus what a model and a loss need to know about them.

A `Dataset` is the resolved form of a dataset spec. Its `digest` hashes the exact tensors a
split yields, after normalization, so a result records precisely which examples it saw.
`Dataset.from_arrays` is how every built-in (and any ``module:factory`` a user writes)
assembles one: it checks shapes and dtypes once, here, instead of in every loader.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from lsdb.errors import BadInput
from lsdb.specs import Spec

Task = Literal["classification", "regression", "causal-lm", "masked-lm"]
SPLITS = ("train", "test")
NORMALIZATIONS = ("standard", "scale", "none")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test tensors with their input shape, output size and task.

    ``x`` is float32 of shape ``(N, *input_shape)``. ``y`` is int64 of shape ``(N,)`` for
    classification and float32 of shape ``(N, num_classes)`` for regression (targets are
    always 2-D so they match a model's output under MSE). Loaded datasets are shared by a
    cache: treat the tensors as read-only.
    """

    name: str
    spec: Spec
    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    input_shape: tuple[int, ...]
    num_classes: int
    task: Task
    _digests: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def default_loss(self) -> str:
        """``cross_entropy`` for classification, ``mse`` for regression, ``token_cross_entropy`` for language
        modelling (``causal-lm``, ``masked-lm``: token ids in, (N, T) token labels out; see `lsdb.data.text`)."""
        if self.task in ("causal-lm", "masked-lm"):
            return "token_cross_entropy"
        return "cross_entropy" if self.task == "classification" else "mse"

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of the ``train`` or ``test`` split."""
        if name == "train":
            return self.train
        if name == "test":
            return self.test
        raise BadInput(f"dataset '{self.name}': unknown split '{name}'; available: {', '.join(SPLITS)}")

    def digest(self, split: str) -> str:
        """sha256 hex of a split's x and y: dtype, shape and bytes of each (cached)."""
        if split not in self._digests:
            self._digests[split] = tensors_digest(*self.split(split))
        return self._digests[split]

    @classmethod
    def from_arrays(
        cls,
        name: str,
        train: tuple[Any, Any],
        test: tuple[Any, Any],
        *,
        task: str = "auto",
        num_classes: int | None = None,
        spec: Spec | None = None,
    ) -> Dataset:
        """Check and convert ``(x, y)`` arrays or tensors into a `Dataset`.

        ``task="auto"`` means classification for integer labels and regression for float
        targets. `num_classes` defaults to the largest label + 1 (classification) or the
        target width (regression). Problems are `BadInput` naming the dataset.
        """
        if task not in ("auto", "classification", "regression"):
            raise BadInput(f"dataset '{name}': task must be auto, classification or regression, got '{task}'")
        x_tr, y_tr = _as_pair(name, "train", train)
        x_te, y_te = _as_pair(name, "test", test)
        if x_tr.shape[1:] != x_te.shape[1:]:
            raise BadInput(
                f"dataset '{name}': train examples have shape {tuple(x_tr.shape[1:])} "
                f"but test examples {tuple(x_te.shape[1:])}"
            )
        if task == "auto":
            integral = not (y_tr.is_floating_point() or y_tr.is_complex())
            task = "classification" if integral else "regression"
        if task == "classification":
            y_tr, y_te = _labels(name, "train", y_tr), _labels(name, "test", y_te)
            largest = int(max(y_tr.max(), y_te.max())) if len(y_te) else int(y_tr.max())
            if num_classes is None:
                num_classes = largest + 1
            elif largest >= num_classes:
                raise BadInput(f"dataset '{name}': label {largest} is out of range for {num_classes} classes")
        else:
            y_tr, y_te = _targets(name, "train", y_tr), _targets(name, "test", y_te)
            if y_tr.shape[1:] != y_te.shape[1:]:
                raise BadInput(f"dataset '{name}': train and test targets differ in width")
            num_classes = y_tr.shape[1]
        return cls(
            name=name,
            spec=spec if spec is not None else Spec(name),
            train=(x_tr, y_tr),
            test=(x_te, y_te),
            input_shape=tuple(x_tr.shape[1:]),
            num_classes=int(num_classes),
            task=task,  # type: ignore[arg-type]
        )


def tensors_digest(*tensors: Tensor) -> str:
    """sha256 over each tensor's dtype, shape and raw bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def split_indices(n: int, test_fraction: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random (train, test) split of ``range(n)``; ``ceil(n * test_fraction)`` go to test.

    Uses NumPy's legacy `RandomState`, whose stream is frozen across NumPy versions, so the
    same seed selects the same examples everywhere.
    """
    if not 0.0 < test_fraction < 1.0:
        raise BadInput(f"dataset '{what}': test_fraction must be between 0 and 1, got {test_fraction}")
    n_test = math.ceil(n * test_fraction)
    if n_test >= n:
        raise BadInput(f"dataset '{what}': {n} examples are too few to split with test_fraction={test_fraction}")
    order = np.random.RandomState(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def check_normalize(normalize: str | None, what: str) -> str:
    """`normalize` as one of ``standard``, ``scale``, ``none``; else `BadInput`.

    The spec grammar reads ``normalize=none`` as None, so None means ``none``.
    """
    normalize = "none" if normalize is None else normalize
    if normalize not in NORMALIZATIONS:
        raise BadInput(f"dataset '{what}': normalize must be one of {', '.join(NORMALIZATIONS)}, got '{normalize}'")
    return normalize


def standardize(x_train: Tensor, x_test: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature standardization with the train split's mean and std (constant features: std 1)."""
    mean = x_train.mean(dim=0, keepdim=True)
    std = x_train.std(dim=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (x_train - mean) / std, (x_test - mean) / std


def _as_pair(name: str, split: str, pair: Any) -> tuple[Tensor, Tensor]:
    try:
        x, y = (v if isinstance(v, Tensor) else torch.as_tensor(np.asarray(v)) for v in pair)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise BadInput(f"dataset '{name}': the {split} split must be a pair of arrays (x, y): {exc}") from None
    if x.ndim < 2:
        raise BadInput(f"dataset '{name}': {split} x must have shape (N, features...), got {tuple(x.shape)}")
    if len(x) != len(y):
        raise BadInput(f"dataset '{name}': {split} x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0 and split == "train":
        raise BadInput(f"dataset '{name}': the train split is empty")
    if x.dtype == torch.bool or x.is_complex() or not (x.is_floating_point() or x.dtype in _INT_DTYPES):
        raise BadInput(f"dataset '{name}': {split} x must be numeric, got {x.dtype}")
    return x.to(torch.float32).contiguous(), y


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _labels(name: str, split: str, y: Tensor) -> Tensor:
    if y.ndim != 1:
        raise BadInput(f"dataset '{name}': {split} labels must have shape (N,), got {tuple(y.shape)}")
    if y.is_floating_point():
        if not torch.equal(y, y.round()):
            raise BadInput(f"dataset '{name}': {split} labels are not whole numbers; use task=regression")
    elif y.dtype not in _INT_DTYPES and y.dtype != torch.bool:
        raise BadInput(f"dataset '{name}': {split} labels must be integers, got {y.dtype}")
    y = y.to(torch.int64).contiguous()
    if len(y) and int(y.min()) < 0:
        raise BadInput(f"dataset '{name}': {split} labels must be >= 0, got {int(y.min())}")
    return y


def _targets(name: str, split: str, y: Tensor) -> Tensor:
    if y.ndim not in (1, 2) or y.is_complex() or y.dtype == torch.bool:
        raise BadInput(f"dataset '{name}': {split} regression targets must be real with shape (N,) or (N, D)")
    y = y.to(torch.float32)
    return (y.unsqueeze(1) if y.ndim == 1 else y).contiguous()
