"""From input checkpoints to points in parameter space, and from points to losses.

What the three analyses share: every checkpoint is flattened with the layout of the model
built for the analysis (`ParamLayout.from_module(model, buffers=True)`: parameters, then
floating-point buffers such as BatchNorm running statistics), an `Evaluator` is placed on
the context's device and dtype for one split, and its (done, total) progress is mapped onto
a slice of the analysis' overall progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.analyses import Context, InputCheckpoint
from lsdb.errors import BadInput
from lsdb.landscape import Evaluation, Evaluator, ParamLayout

SPLITS = ("train", "test")
BN_MODES = ("eval", "recompute")


def single(inputs: Mapping[str, Sequence[InputCheckpoint]], role: str) -> InputCheckpoint:
    """The one checkpoint of slot `role` (the runner checks counts; this guards direct calls)."""
    given = list(inputs.get(role, ()))
    if len(given) != 1:
        raise BadInput(f"slot '{role}' takes exactly one checkpoint, got {len(given)}")
    return given[0]


def by_step(checkpoints: Sequence[InputCheckpoint]) -> list[InputCheckpoint]:
    """A trajectory in step order (the given order where a step is missing)."""
    items = list(checkpoints)
    if all(c.step is not None for c in items):
        items.sort(key=lambda c: c.step)  # type: ignore[arg-type, return-value]
    return items


def model_layout(model: nn.Module) -> ParamLayout:
    """Parameters then floating buffers: the layout the `Evaluator` uses for its points."""
    return ParamLayout.from_module(model, buffers=True)


def point_of(ctx: Context, layout: ParamLayout, checkpoint: InputCheckpoint) -> Tensor:
    """The checkpoint's weights as one flat vector on the context's device and dtype."""
    try:
        return layout.flatten(checkpoint.state(), dtype=ctx.dtype, device=ctx.device)
    except (KeyError, ValueError) as exc:
        raise BadInput(f"checkpoint {checkpoint.name} does not fit the model: {exc}") from None


def evaluator_for(ctx: Context, model: nn.Module, split: str, bn: str, subset: int | None = None) -> Evaluator:
    """An `Evaluator` of `model` on a split; ``bn="recompute"`` uses the train inputs (Garipov et al. 2018)."""
    x, y = ctx.data(split)
    train_x = ctx.data("train")[0] if bn == "recompute" else None
    return Evaluator(
        model,
        x,
        y,
        loss=ctx.loss,
        bn=bn,
        train_x=train_x,  # type: ignore[arg-type]
        device=ctx.device,
        dtype=ctx.dtype,
        subset=subset,
        seed=ctx.seed,
    )


def reporter(ctx: Context, start: float, stop: float, message: str) -> Callable[[int, int], None]:
    """An evaluator progress callback that reports ``start .. stop`` of the whole run to `ctx`."""

    def report(done: int, total: int) -> None:
        ctx.progress(start + (stop - start) * done / max(total, 1), message)

    return report


def accuracy_of(evaluation: Evaluation | object, shape: tuple[int, ...]) -> np.ndarray:
    """Accuracy as float64 NumPy of `shape`; all NaN for a regression loss (no accuracy)."""
    acc = getattr(evaluation, "accuracy", None)
    if acc is None:
        return np.full(shape, np.nan)
    return acc.double().numpy().reshape(shape)


def plane_coordinates(directions: Tensor, deltas: Tensor) -> Tensor:
    """Least-squares coordinates c of each row δ in span(directions): δ ≈ Σ_j c_j d_j.

    For orthonormal directions (PCA) this is the projection ⟨d_j, δ⟩; for the plane through
    three checkpoints it gives (1, 0) and (0, 1) for the two others. Float64, on the CPU.
    """
    d = directions.to(torch.float64)
    gram = d @ d.T
    return (torch.linalg.pinv(gram) @ (d @ deltas.to(d).T)).T.cpu()


def finite_scalars(scalars: Mapping[str, float]) -> dict[str, float]:
    """The scalars that are finite numbers (a diverged loss makes no sortable scalar)."""
    return {k: float(v) for k, v in scalars.items() if v is not None and np.isfinite(v)}
