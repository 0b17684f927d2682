"""Regular 1D and 2D grids of coefficients, and a loss surface evaluated on one.

A grid over J = 1 or 2 directions is the set of points θ0 + x d1 (+ y d2) for x in `xs`
and y in `ys`, ordered row-major: point k = i * len(ys) + j has coefficients (xs[i], ys[j]).
This is the surface of Li et al. 2018 (§4) and the 1D plot of Goodfellow et al. 2015.
Axes are built in float64 with values within 1e-12 of zero snapped to exactly 0, so a
symmetric range with an odd number of steps evaluates θ0 itself at its centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lsdb.landscape.evaluator import CancelCheck, Evaluator, Progress

Axis = Tensor | Sequence[float]


def grid_axis(start: float, stop: float, num: int) -> Tensor:
    """`num` evenly spaced float64 values from `start` to `stop` inclusive; near-zeros snapped to 0."""
    if num < 1:
        raise ValueError(f"a grid axis needs at least one value, got {num}")
    values = torch.linspace(start, stop, num, dtype=torch.float64)
    return torch.where(values.abs() < 1e-12, torch.zeros_like(values), values)


def grid_coefficients(xs: Axis, ys: Axis | None = None) -> Tensor:
    """(K, J) float64 coefficients of a 1D grid (K = len(xs), J = 1) or a 2D grid in row-major order."""
    x = torch.as_tensor(xs, dtype=torch.float64).reshape(-1)
    if ys is None:
        return x.unsqueeze(1)
    y = torch.as_tensor(ys, dtype=torch.float64).reshape(-1)
    gx, gy = torch.meshgrid(x, y, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


@dataclass(frozen=True)
class GridEvaluation:
    """A surface: `loss`, `accuracy`, `stderr` shaped (len(xs),) or (len(xs), len(ys)); `outputs` (..., N, C)."""

    xs: Tensor
    ys: Tensor | None
    loss: Tensor
    accuracy: Tensor | None
    n_examples: int
    stderr: Tensor | None = None
    outputs: Tensor | None = None
    strategy: str = "per_point"  # how the evaluator ran the points (`Evaluation.strategy`)
    graphed: bool = False  # batched passes replayed as CUDA graphs (`Evaluation.graphed`)


def evaluate_grid(
    evaluator: Evaluator,
    directions: Tensor,
    xs: Axis,
    ys: Axis | None = None,
    theta0: Tensor | None = None,
    *,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> GridEvaluation:
    """Evaluate θ0 + x d1 (+ y d2) over the grid `xs` (× `ys`); `directions` is (1, P) or (2, P)."""
    x = torch.as_tensor(xs, dtype=torch.float64).reshape(-1)
    y = None if ys is None else torch.as_tensor(ys, dtype=torch.float64).reshape(-1)
    if directions.dim() != 2 or directions.shape[0] != (1 if y is None else 2):
        raise ValueError(f"a {'1D' if y is None else '2D'} grid needs {1 if y is None else 2} directions, "
                         f"got shape {tuple(directions.shape)}")
    if y is None:
        result = evaluator.along(directions, grid_coefficients(x), theta0, progress=progress,
                                 should_cancel=should_cancel)
        shape: tuple[int, ...] = (len(x),)

        def grid(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.reshape(*shape, *t.shape[1:])
    else:
        # evaluated line by line of constant y (the bands a surface is tiled into), each line
        # chunked the same way: a band of lines gives the same numbers as the whole grid
        by_line = grid_coefficients(y, x).flip(1)  # y-major: point j * len(x) + i is (xs[i], ys[j])
        result = evaluator.along(directions, by_line, theta0, progress=progress, should_cancel=should_cancel,
                                 group=len(x))

        def grid(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.reshape(len(y), len(x), *t.shape[1:]).transpose(0, 1).contiguous()

    loss = grid(result.loss)
    assert loss is not None
    return GridEvaluation(x, y, loss, grid(result.accuracy), result.n_examples,
                          grid(result.stderr), grid(result.outputs), result.strategy, result.graphed)
