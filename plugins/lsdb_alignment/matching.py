"""Matching one network to another for `align`, `merge` and `merge-plane`: the permutation spec of
the run's model, matching, the loss along a line with BatchNorm reset or REPAIR, and dtype bookkeeping.

`align_state(ctx, reference, other, method)` aligns with `merge`'s own matching settings; other
families' ``-p align=weights|activations`` goes through `Context.aligned` (lsdb.plugin), which
stores each alignment once as an `align` result and reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape.matching import MatchResult, activation_matching, weight_matching
from lsdb.landscape.permutations import PermutationSpec, apply_permutation, permutation_spec
from lsdb.landscape.repair import interpolate_state, interpolate_stats, layer_statistics, repair, reset_batchnorm
from lsdb.landscape.swa import batchnorm_modules
from lsdb.plugin import ALIGNMENTS, BadInput, Context, accuracy_of

ALIGN_METHODS = ALIGNMENTS[1:]
ALIGN_CHOICES = ALIGNMENTS
#: How a point between networks gets its normalization statistics back (Jordan et al. 2023).
RENORMALIZE = ("auto", "none", "reset", "repair")


def has_batchnorm(model: nn.Module) -> bool:
    return bool(batchnorm_modules(model))


def cast_like(state: Mapping[str, Tensor], like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`state` with each tensor in the dtype of the same tensor in `like`, on the CPU (the inputs' schema)."""
    return {k: v.detach().to(like[k].dtype).cpu() if k in like else v.detach().cpu() for k, v in state.items()}


def train_x(ctx: Context, analysis: str) -> Tensor:
    """The training inputs; one-line `BadInput` when there are none."""
    x = ctx.data("train")[0]
    if len(x) == 0:
        raise BadInput(f"{analysis}: the dataset has no training examples (needed for activations and BatchNorm)")
    return x


def data_batches(ctx: Context, analysis: str, subset: int, batch_size: int) -> list[Tensor]:
    """A seeded random subset of `subset` training inputs (all when 0), in their order, in batches: the same
    examples for the same seed, other examples for another (`Context.aligned`'s subset, offset 18)."""
    x = train_x(ctx, analysis)
    if 0 < subset < len(x):
        idx = torch.randperm(len(x), generator=ctx.generator(offset=18))[:subset].sort().values
        x = x[idx.to(x.device)]
    return list(x.split(batch_size))


def derive_spec(ctx: Context, model: nn.Module, analysis: str) -> PermutationSpec:
    """The model's permutation groups (`lsdb.landscape.permutations`); a one-line `BadInput` otherwise."""
    x = train_x(ctx, analysis)
    try:
        return permutation_spec(model, x[:2])
    except ValueError as exc:
        raise BadInput(f"{analysis}: {exc}") from None


def match(ctx: Context, spec: PermutationSpec, reference: Mapping[str, Tensor], other: Mapping[str, Tensor],
          method: str, *, analysis: str, max_sweeps: int = 100, subset: int = 1024, batch_size: int = 256
          ) -> MatchResult:
    """Permutations of `other`'s units that align it to `reference` (Ainsworth et al. 2023 §3.1 / Alg. 1)."""
    try:
        if method == "weights":
            return weight_matching(spec, reference, other, max_sweeps=max_sweeps, seed=ctx.seed)
        if method == "activations":
            batches = data_batches(ctx, analysis, subset, batch_size)
            return activation_matching(spec, ctx.build_model(dict(reference)), ctx.build_model(dict(other)), batches)
    except ValueError as exc:
        raise BadInput(f"{analysis}: {exc}") from None
    raise BadInput(f"{analysis}: unknown alignment '{method}'; available: {', '.join(ALIGN_METHODS)}")


def align_state(ctx: Context, reference: Mapping[str, Tensor], other: Mapping[str, Tensor], method: str,
                analysis: str, **options: int) -> tuple[dict[str, Tensor], MatchResult | None, PermutationSpec | None]:
    """`other` permuted to match `reference` by `method` (``none``: unchanged), with the match and the spec."""
    if method == "none":
        return dict(other), None, None
    model = ctx.build_model(dict(reference))
    spec = derive_spec(ctx, model, analysis)
    result = match(ctx, spec, reference, other, method, analysis=analysis, **options)
    return apply_permutation(spec, result.perms, other), result, spec


def resolve_renormalize(model: nn.Module, mode: str) -> str:
    """``auto``: reset BatchNorm statistics when the model has BatchNorm, else REPAIR (Jordan et al. 2023)."""
    if mode == "auto":
        return "reset" if has_batchnorm(model) else "repair"
    if mode == "repair" and has_batchnorm(model):
        return "reset"  # REPAIR of a BatchNorm network is the BatchNorm reset (Jordan et al. §3.1)
    return mode


def repair_layers(model: nn.Module, spec: PermutationSpec) -> list[str]:
    """The Linear/Conv layers REPAIR rescales: every producer of a hidden (permutable) group, in graph order."""
    return [p for g in spec.groups for p in g.producers]


def line_losses(ctx: Context, model: nn.Module, a: Mapping[str, Tensor], b: Mapping[str, Tensor],
                alphas: np.ndarray, split: str, renormalize: str, batches: list[Tensor],
                layers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy) at θ(α) = (1 − α) θ_a + α θ_b, each point renormalized (``none``/``reset``/``repair``)."""
    layout = ctx.layout(model)
    states = []
    stats_a = stats_b = None
    if renormalize == "repair" and layers:
        stats_a = layer_statistics(ctx.build_model(dict(a)), layers, batches)
        stats_b = layer_statistics(ctx.build_model(dict(b)), layers, batches)
    for alpha in alphas:
        net = ctx.build_model(interpolate_state(dict(a), dict(b), float(alpha)))
        if renormalize == "reset":
            with torch.no_grad():
                reset_batchnorm(net, batches)
        elif stats_a is not None and stats_b is not None:
            repair(net, interpolate_stats(stats_a, stats_b, float(alpha)), batches)
        states.append(layout.flatten(net, dtype=ctx.dtype, device=ctx.device))
    result = ctx.evaluator(model, split, "eval").at_points(torch.stack(states), should_cancel=ctx.should_cancel)
    loss = result.loss.double().numpy()
    return loss, accuracy_of(result, loss.shape)
