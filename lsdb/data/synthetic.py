"""Seeded synthetic datasets: toy problems whose answer is known, and CIFAR-shaped stand-ins.

``blobs`` (Gaussian clusters), ``spirals`` (the interleaved spirals of Lang & Witbrock 1988)
and ``teacher`` (a fixed random two-layer network labels Gaussian inputs: the teacher-student
setting of Gardner & Derrida 1989, studied for loss landscapes by e.g. Safran & Shamir 2018).
``shape=[3,32,32]`` makes image-shaped blobs, so conv nets can be benchmarked on a
"CIFAR-shaped" problem without any file on disk. Everything is drawn from NumPy's legacy
`RandomState`, whose stream is frozen, so a spec means the same examples on every machine.
"""

from __future__ import annotations

import math

import numpy as np

from lsdb.data.base import Dataset, split_indices
from lsdb.errors import BadInput

KINDS = ("blobs", "spirals", "teacher")
TEACHER_HIDDEN = 32


def synthetic(
    kind: str = "blobs",
    n: int = 1000,
    dim: int = 2,
    classes: int = 2,
    noise: float = 0.1,
    seed: int = 0,
    test_fraction: float = 0.2,
    shape: tuple[int, ...] | None = None,
    task: str = "auto",
) -> Dataset:
    """A seeded synthetic problem of `n` examples in `dim` features (or of image `shape`).

    ``blobs``: `classes` Gaussian clusters with N(0, 1) centres and std `noise`. ``spirals``:
    `classes` spiral arms in the first two features (extra features are noise). ``teacher``:
    labels from a fixed random tanh network, ``task=regression`` (default; one output plus
    `noise`) or ``classification`` (argmax over `classes` noisy outputs).
    """
    if kind not in KINDS:
        raise BadInput(f"dataset 'synthetic': unknown kind '{kind}'; available: {', '.join(KINDS)}")
    if task not in ("auto", "classification", "regression"):
        raise BadInput(f"dataset 'synthetic': task must be auto, classification or regression, got '{task}'")
    if task == "auto":
        task = "regression" if kind == "teacher" else "classification"
    if task == "regression" and kind != "teacher":
        raise BadInput(f"dataset 'synthetic': kind={kind} is a classification problem; use kind=teacher for regression")
    if n < 2 or dim < 1 or noise < 0:
        raise BadInput(
            f"dataset 'synthetic': need n >= 2, dim >= 1 and noise >= 0; got n={n}, dim={dim}, noise={noise}"
        )
    if task == "classification" and classes < 2:
        raise BadInput(f"dataset 'synthetic': classes must be at least 2, got {classes}")
    if shape is not None:
        if not shape or any(s < 1 for s in shape):
            raise BadInput(f"dataset 'synthetic': shape must be positive sizes such as [3,32,32], got {list(shape)}")
        if kind == "spirals":
            raise BadInput("dataset 'synthetic': spirals are two-dimensional; shape works with blobs and teacher")
        dim = math.prod(shape)
    rs = np.random.RandomState(seed)
    if kind == "blobs":
        x, y = _blobs(rs, n, dim, classes, noise)
    elif kind == "spirals":
        if dim < 2:
            raise BadInput(f"dataset 'synthetic': spirals need dim >= 2, got {dim}")
        x, y = _spirals(rs, n, dim, classes, noise)
    else:
        x, y = _teacher(rs, n, dim, classes if task == "classification" else 1, noise, task == "classification")
    if shape is not None:
        x = x.reshape(n, *shape)
    train_idx, test_idx = split_indices(n, test_fraction, seed, "synthetic")
    return Dataset.from_arrays(
        "synthetic",
        (x[train_idx].astype(np.float32), y[train_idx]),
        (x[test_idx].astype(np.float32), y[test_idx]),
        task=task,
        num_classes=classes if task == "classification" else None,
    )


def _balanced_labels(rs: np.random.RandomState, n: int, classes: int) -> np.ndarray:
    return rs.permutation(np.arange(n) % classes).astype(np.int64)


def _blobs(rs: np.random.RandomState, n: int, dim: int, classes: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    centres = rs.standard_normal((classes, dim))
    y = _balanced_labels(rs, n, classes)
    return centres[y] + noise * rs.standard_normal((n, dim)), y


def _spirals(rs: np.random.RandomState, n: int, dim: int, classes: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    y = _balanced_labels(rs, n, classes)
    t = rs.uniform(0.0, 1.0, n)
    angle = 3 * math.pi * t + 2 * math.pi * y / classes  # 1.5 turns per arm, arms evenly rotated
    x = noise * rs.standard_normal((n, dim))
    x[:, 0] += t * np.cos(angle)
    x[:, 1] += t * np.sin(angle)
    return x, y


def _teacher(
    rs: np.random.RandomState, n: int, dim: int, outputs: int, noise: float, classify: bool
) -> tuple[np.ndarray, np.ndarray]:
    w1 = rs.standard_normal((dim, TEACHER_HIDDEN)) / math.sqrt(dim)
    w2 = rs.standard_normal((TEACHER_HIDDEN, outputs)) / math.sqrt(TEACHER_HIDDEN)
    x = rs.standard_normal((n, dim))
    out = np.tanh(x @ w1) @ w2 + noise * rs.standard_normal((n, outputs))
    return x, (out.argmax(axis=1).astype(np.int64) if classify else out.astype(np.float32))
