"""`hessian-trajectory`: the top-k Hessian eigenvalues at every checkpoint of a run, warm-started along it.

Progressive sharpening (Cohen et al. 2021, "Gradient Descent on Neural Networks Typically Occurs
at the Edge of Stability", §3): λmax of the training loss rises during training until it
reaches 2/η. This analysis follows the top-k eigenvalues of H = ∇²L(θ_t) over a run's
checkpoints in step order, with the same operator, Lanczos and error estimate as `hessian`
(`hessian_operator`, `lanczos`, Ritz bound + `rounding_error`); with ``lambda_min=true`` also the most
negative eigenvalue, from the same Krylov space, as `hessian` computes it.

Warm start (issue #19): consecutive checkpoints have nearby Hessians, so the Lanczos of
checkpoint t starts from the sum of checkpoint t−1's top-k Ritz vectors (and its bottom one with
``lambda_min``) plus a `WARM_START_NOISE` = 0.1 share of a random vector, which keeps every
direction reachable (an
eigenvalue that overtakes the previous top one is still found: the top eigenvector of the last
checkpoint below turned by 81° from its predecessor, and the warm start got λmax right). The
first checkpoint starts from the gradient, as `hessian` does. Measured on the digits MLP
64-128-128-10 (26,122 parameters, all 1,437 training examples, float32, SGD lr 0.05; one run,
Lanczos products summed over the trajectory, every value within 1e-4 of a tol-1e-8 reference;
``scripts/bench_hessian_trajectory.py --starts``):

======================================  ==============================  ===============================
start of checkpoint t (t > 0)           top-1, 13 checkpoints 2 steps   top-1, 7 checkpoints 10 steps
                                        apart (k = 3 in brackets)       apart
======================================  ==============================  ===============================
gradient + √½ random (cold, `hessian`)  204 (357)                       71
random                                  187 (366)                       70
previous Ritz vectors + 0.01 random     117 (276)                       65
previous Ritz vectors + 0.1 random      118 (275)                       65
previous Ritz vectors + √½ random       125 (283)                       65
previous + gradient + 0.1 random        136 (288)                       62
======================================  ==============================  ===============================

The closer the checkpoints, the larger the saving (0.58x the products at 2 steps apart, 0.92x at
10); mixing in the current gradient costs more than it saves on close checkpoints and helps only
a little on distant ones, and the random share barely matters below √½, so the start is the
previous vectors + 0.1 random. ``warm_start=false`` starts every checkpoint as `hessian` does
(gradient + √½ random, the same seed), for comparison. `scripts/bench_hessian_trajectory.py`
measures the whole trajectory against cold starts and PyHessian.

Arrays: steps (T), eigenvalues and eigenvalue_errors (T, k; Ritz bound + rounding estimate), hvps
(T; Hessian-vector products per checkpoint, the 2 of the rounding estimate included),
iterations (T; Lanczos steps), loss (T), converged (T; 1 or 0); with ``lambda_min``: lambda_min and
lambda_min_errors (T; the bound relative to the spectral radius, as `hessian`'s). Scalars: lambda_max_first,
lambda_max_last, lambda_max_max, step_of_lambda_max_max, total_hvps, num_checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape.lanczos import lanczos
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    by_step,
    finite_scalars,
)
from lsdb_curvature.hessian import (
    BN_MODES,
    GRADIENT_START_NOISE,
    gradient_start,
    hessian_operator,
    rounding_error,
    stage,
)

#: Share of the random vector in a warm start from the previous checkpoint's Ritz vectors (see the module docstring).
WARM_START_NOISE = 0.1


@dataclass(frozen=True)
class HessianTrajectoryParams:
    """Parameters of `hessian-trajectory` (those of `hessian` that apply to top eigenvalues, plus `warm_start`)."""

    k: int = field(default=1, metadata={"help": "number of top eigenvalues per checkpoint", "min": 1})
    tol: float = field(default=1e-4, metadata={"help": "Lanczos tolerance: relative error bound of each eigenvalue",
                                               "min": 0.0})
    max_iter: int = field(default=200, metadata={"help": "at most this many Lanczos steps per checkpoint", "min": 2})
    warm_start: bool = field(default=True, metadata={"help": "start each checkpoint's Lanczos from the previous "
                                                             "checkpoint's top Ritz vectors (else as `hessian`)"})
    lambda_min: bool = field(default=False, metadata={"help": "also the most negative eigenvalue (in the same "
                                                              "Lanczos; to tol relative to the spectral radius)"})
    split: str = field(default="train", metadata={"help": "split the loss is taken over", "choices": SPLITS})
    subset: int | None = field(default=None, metadata={"help": "use a fixed random subset of this many examples "
                                                               "(the same at every checkpoint)", "min": 1})
    batch_size: int | None = field(default=None, metadata={"help": "examples per pass (default: memory permitting)",
                                                           "min": 1})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval (running statistics) or batch",
                                              "choices": BN_MODES})


def checkpoint_model(ctx: Context, ckpt: InputCheckpoint, previous: InputCheckpoint | None,
                     size: int | None) -> tuple[nn.Module, int]:
    """The model at `ckpt` and its state's size; a size unlike the previous checkpoint's is refused."""
    state = ckpt.state()
    n = sum(int(t.numel()) for t in state.values() if t.is_floating_point())
    if previous is not None and size is not None and n != size:
        raise BadInput(f"{ckpt.name} has {n} parameters but {previous.name} has {size}: "
                       "a trajectory's checkpoints must share one architecture")
    try:
        return ctx.build_model(state), n
    except BadInput as err:
        raise BadInput(f"{ckpt.name}: {err}") from None


def warm_start(previous: Tensor | None) -> Tensor | None:
    """The previous checkpoint's top Ritz vectors as a start, or None where there are none usable."""
    if previous is None or len(previous) == 0 or not bool(torch.isfinite(previous).all()):
        return None
    return previous


def padded(values: Tensor, k: int) -> np.ndarray:
    """The first k values as float64, NaN-padded (an operator with fewer than k dimensions)."""
    out = np.full(k, np.nan)
    out[:len(values)] = values[:k].double().cpu().numpy()
    return out


def run_hessian_trajectory(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                           params: HessianTrajectoryParams) -> AnalysisOutput:
    """Top-k Hessian eigenvalues at every checkpoint of the trajectory (see the module docstring)."""
    checkpoints = by_step(inputs.get("trajectory", []))
    if not checkpoints:
        raise BadInput("the trajectory has no checkpoints")
    total = len(checkpoints)
    eigenvalues, errors = np.full((total, params.k), np.nan), np.full((total, params.k), np.nan)
    hvps, iterations = np.zeros(total, np.int64), np.zeros(total, np.int64)
    loss, converged = np.zeros(total), np.zeros(total, np.int64)
    bottom, bottom_errors = np.full(total, np.nan), np.full(total, np.nan)
    vectors: Tensor | None = None
    size: int | None = None
    n_params, dtype = 0, ""
    for i, ckpt in enumerate(checkpoints):
        model, size = checkpoint_model(ctx, ckpt, checkpoints[i - 1] if i else None, size)
        op = hessian_operator(ctx, model, params.split, params.subset, params.bn, params.batch_size, "reverse")
        n_params, dtype = op.n, str(op.dtype).replace("torch.", "")
        warm = warm_start(vectors) if params.warm_start else None
        start, noise = (warm, WARM_START_NOISE) if warm is not None else (gradient_start(op), GRADIENT_START_NOISE)
        eig = lanczos(op.matvec, op.n, k=params.k, bottom=int(params.lambda_min), tol=params.tol,
                      max_iter=params.max_iter, start=start, start_noise=noise, generator=ctx.generator(0),
                      dtype=op.dtype, device=op.device, vectors=True,
                      progress=stage(ctx, i / total, (i + 1) / total, params.max_iter,
                                     f"checkpoint {i + 1}/{total}: Lanczos"))
        rounding = rounding_error(op.matvec, eig.top_vectors, float(eig.ritz_values.abs().max()), op.dtype)
        eigenvalues[i], errors[i] = padded(eig.top, params.k), padded(eig.top_errors + rounding, params.k)
        hvps[i], iterations[i] = op.hvp_count, eig.iterations
        loss[i], converged[i] = op.loss, int(eig.converged)
        if params.lambda_min:
            bottom[i], bottom_errors[i] = float(eig.bottom[0]), float(eig.bottom_errors[0]) + rounding
        vectors = torch.cat([v for v in (eig.top_vectors, eig.bottom_vectors) if v is not None])
        del model, op
    steps = np.array([c.step if c.step is not None else i for i, c in enumerate(checkpoints)], dtype=np.int64)
    lam = eigenvalues[:, 0]
    scalars: dict[str, float] = {"num_checkpoints": float(total), "total_hvps": float(hvps.sum()),
                                 "lambda_max_first": float(lam[0]), "lambda_max_last": float(lam[-1])}
    if np.isfinite(lam).any():
        top = int(np.nanargmax(lam))
        scalars.update(lambda_max_max=float(lam[top]), step_of_lambda_max_max=float(steps[top]))
    arrays: dict[str, np.ndarray | Tensor] = {
        "steps": steps, "eigenvalues": eigenvalues, "eigenvalue_errors": errors, "hvps": hvps,
        "iterations": iterations, "loss": loss, "converged": converged,
    }
    if params.lambda_min:
        arrays.update(lambda_min=bottom, lambda_min_errors=bottom_errors)
    attrs = {"run": checkpoints[0].run, "checkpoints": [c.name for c in checkpoints], "n_params": int(n_params),
             "dtype": dtype, "bn": params.bn, "warm_start": params.warm_start}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


HESSIAN_TRAJECTORY = AnalysisSpec(
    name="hessian-trajectory",
    version=1,
    run=run_hessian_trajectory,
    copies=lambda p, f: 12.0 + p.max_iter + 2 * p.k,
    params=HessianTrajectoryParams,
    inputs=(Slot("trajectory", kind="trajectory", min=1, max=None, help="a run: all its checkpoints by step"),),
    resources="any",
    description=(
        "Top-k Hessian eigenvalues (Lanczos) at every checkpoint of a run, each Lanczos warm-started from the "
        "previous checkpoint's top Ritz vectors: progressive sharpening (Cohen et al. 2021) in fewer "
        "Hessian-vector products than a `hessian` per checkpoint.\n\n"
        "Arrays: steps (T), eigenvalues (T, k), eigenvalue_errors (T, k; Ritz bound + rounding estimate), hvps, "
        "iterations, loss, converged (T); lambda_min, lambda_min_errors (T; lambda_min=true). Scalars: "
        "lambda_max_first, lambda_max_last, lambda_max_max, step_of_lambda_max_max, total_hvps, num_checkpoints."
    ),
)
