"""Reduced-precision evaluation, offered explicitly and always with its measured error.

bfloat16 autocast (``torch.autocast(device_type, dtype=torch.bfloat16)``, on a CPU or a CUDA
device) runs the matmuls and convolutions of a float32 evaluator in bfloat16 (8 significant
bits), which is faster but not the same arithmetic; the points and the loss reduction stay in
float32 (`Evaluator`). So a bf16 evaluation is never reported
alone: `bf16_error` evaluates a fixed, seeded sample of the same points both ways and
returns the maximum and the median relative error of the bf16 losses against the float32
ones, |L_bf16 − L_fp32| / |L_fp32|.

TF32 (CUDA only, `lsdb.landscape.float32_math.allow_tf32`) runs float32 matmuls and convolutions
on tensor cores with a 10-bit mantissa; like bf16 it is offered only with its error
(`precision_error`). Plain float32 on CUDA is IEEE float32, convolutions included
(`lsdb.landscape.float32_math`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lsdb.landscape.evaluator import CancelCheck, Evaluation, Evaluator
from lsdb.landscape.float32_math import allow_tf32

Precision = Literal["float32", "bf16", "tf32"]
PRECISIONS: tuple[str, ...] = ("float32", "bf16", "tf32")

#: Machine epsilon of each precision's products: bfloat16's 8 significant bits, TF32's 11.
PRECISION_EPSILON = {"bf16": 2.0**-7, "tf32": 2.0**-10}

#: Points of the grid at which bf16 is compared with float32 (all of them when the grid is smaller).
ERROR_SAMPLE_POINTS = 16


@dataclass(frozen=True)
class PrecisionError:
    """Relative error of reduced-precision losses against float32 ones at `n_points` points."""

    max_rel: float
    median_rel: float
    n_points: int


def bf16_autocast(device: torch.device | str) -> torch.autocast:
    """``torch.autocast`` to bfloat16 on `device`'s type (``cpu`` or ``cuda``)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def check_bf16(evaluator: Evaluator) -> None:
    """Autocast lowers only float32 work: a float64 evaluator would silently stay float64."""
    check_precision(evaluator.dtype, evaluator.device, "bf16")


def check_precision(dtype: torch.dtype, device: torch.device | str, precision: str) -> None:
    """ValueError, in one line, when `precision` cannot run on a `dtype` evaluation on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "float32" and dtype != torch.float32:
        raise ValueError(f"precision={precision} needs a float32 evaluation (it lowers float32 work only); this "
                         f"one computes in {str(dtype).removeprefix('torch.')}: compute in float32 or keep "
                         "precision=float32")
    if precision == "tf32" and torch.device(device).type != "cuda":
        raise ValueError(f"precision=tf32 needs a CUDA device (it is an NVIDIA tensor-core format); this evaluation "
                         f"runs on {torch.device(device).type}: use bf16 or float32")


def reduced_precision(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[object]:
    """The context an evaluation at `precision` runs in: none for float32, bf16 autocast, or `allow_tf32`."""
    if precision == "bf16":
        return bf16_autocast(device)
    if precision == "tf32":
        return allow_tf32()
    return contextlib.nullcontext()


def evaluate_bf16(evaluator: Evaluator, directions: Tensor, coefficients: Tensor, theta0: Tensor | None = None, *,
                  should_cancel: CancelCheck | None = None) -> Evaluation:
    """`Evaluator.along` under bfloat16 autocast: the losses at θ0 + Σ_j c_kj d_j in bf16."""
    check_bf16(evaluator)
    with bf16_autocast(evaluator.device):
        return evaluator.along(directions, coefficients, theta0, should_cancel=should_cancel)


def sample_indices(n_points: int, n: int = ERROR_SAMPLE_POINTS, seed: int = 0) -> Tensor:
    """`n` of `n_points` indices (all when there are fewer), drawn with `seed`, sorted."""
    if n_points <= n:
        return torch.arange(n_points)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_points, generator=gen)[:n].sort().values


def relative_error(low: Tensor, reference: Tensor) -> PrecisionError:
    """Max and median of |low − reference| / |reference| over the points with a finite reference loss.

    A non-finite low-precision loss where the reference is finite counts as an infinite error."""
    low, reference = low.double().reshape(-1), reference.double().reshape(-1)
    keep = torch.isfinite(reference)
    if not keep.any():
        return PrecisionError(float("nan"), float("nan"), 0)
    low, reference = low[keep], reference[keep]
    rel = (low - reference).abs() / reference.abs().clamp_min(torch.finfo(torch.float64).tiny)
    rel = torch.where(torch.isfinite(low), rel, torch.full_like(rel, float("inf")))
    return PrecisionError(float(rel.max()), float(rel.median()), int(keep.sum()))


def bf16_error(evaluator: Evaluator, directions: Tensor, coefficients: Tensor, theta0: Tensor | None = None, *,
               n: int = ERROR_SAMPLE_POINTS, seed: int = 0,
               should_cancel: CancelCheck | None = None) -> PrecisionError:
    """Relative error of bf16-autocast losses against float32 at a seeded sample of the points
    (`precision_error` with ``"bf16"``)."""
    return precision_error(evaluator, "bf16", directions, coefficients, theta0, n=n, seed=seed,
                           should_cancel=should_cancel)


def precision_error(evaluator: Evaluator, precision: str, directions: Tensor, coefficients: Tensor,
                    theta0: Tensor | None = None, *, n: int = ERROR_SAMPLE_POINTS, seed: int = 0,
                    should_cancel: CancelCheck | None = None) -> PrecisionError:
    """Relative error of the losses at `precision` (``"bf16"`` or ``"tf32"``) against IEEE float32 at a
    seeded sample of the points.

    `coefficients` (K, J) are all the points (the whole grid); `n` of them, drawn with `seed`,
    are evaluated in float32 and at `precision`, as one group each."""
    check_precision(evaluator.dtype, evaluator.device, precision)
    coefs = torch.as_tensor(coefficients)
    coefs = coefs.unsqueeze(1) if coefs.dim() == 1 else coefs
    picked = coefs[sample_indices(len(coefs), n, seed)]
    reference = evaluator.along(directions, picked, theta0, should_cancel=should_cancel).loss
    with reduced_precision(precision, evaluator.device):
        low = evaluator.along(directions, picked, theta0, should_cancel=should_cancel).loss
    return relative_error(low, reference)
