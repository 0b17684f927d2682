"""BatchNorm at a perturbed point: keep the stored running statistics, or recompute them.

A BatchNorm network evaluated in eval mode normalizes with running statistics collected
during training at θ0. Away from θ0 those statistics are stale. Garipov et al. 2018 ("Loss
Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS, §4 / their ``update_bn``)
and Izmailov et al. 2018 (SWA, ``torch.optim.swa_utils.update_bn``) therefore recompute them
at every point: reset the running statistics, set ``momentum=None`` so that they become the
cumulative (equal-weight) average over batches, run the training inputs through the network
with BatchNorm in train mode, then evaluate in eval mode. The resulting running mean is the
average of the per-batch means and the running variance the average of the unbiased
per-batch variances, so the result depends on the batch size (``bn_batch_size``).

Unlike ``update_bn``, only the BatchNorm layers are put in train mode: dropout stays off, so
the recomputation is deterministic. BatchNorm layers built with
``track_running_stats=False`` always use the statistics of the batch they see and have
nothing to recompute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(module: nn.Module) -> list[tuple[str, _BatchNorm]]:
    """``(name, layer)`` of every BatchNorm layer that tracks running statistics."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def prepare_for_recompute(module: nn.Module) -> None:
    """Set ``momentum=None`` (cumulative averaging) on every tracking BatchNorm layer of `module`."""
    for _, layer in batchnorm_layers(module):
        layer.momentum = None


def recompute_in_place(module: nn.Module, batches: Iterable[Tensor], forward: Callable[[Tensor], object]) -> None:
    """Reset and recompute the running statistics of `module`'s BatchNorm layers from `batches`.

    `module` must already be prepared (`prepare_for_recompute`); `forward` runs the network.
    """
    layers = [m for _, m in batchnorm_layers(module)]
    for layer in layers:
        layer.reset_running_stats()
        layer.train()
    try:
        for xb in batches:
            forward(xb)
    finally:
        for layer in layers:
            layer.eval()


def fresh_statistics(module: nn.Module, n_points: int, like: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Reset running statistics for `n_points` points at once: (batched float buffers, shared counters).

    Running means start at 0 and variances at 1 (``reset_running_stats``); the integer
    ``num_batches_tracked`` counters are shared by all points, which see the same batches.
    """
    batched: dict[str, Tensor] = {}
    shared: dict[str, Tensor] = {}
    for name, layer in batchnorm_layers(module):
        prefix = f"{name}." if name else ""
        shape = (n_points, layer.num_features)
        batched[prefix + "running_mean"] = torch.zeros(shape, dtype=like.dtype, device=like.device)
        batched[prefix + "running_var"] = torch.ones(shape, dtype=like.dtype, device=like.device)
        shared[prefix + "num_batches_tracked"] = torch.zeros((), dtype=torch.long, device=like.device)
    return batched, shared


def recompute_batched(
    module: nn.Module,
    params: dict[str, Tensor],
    shared: dict[str, Tensor],
    batches: Iterable[Tensor],
    n_points: int,
) -> dict[str, Tensor]:
    """Recomputed running statistics for `n_points` points at once, as (n_points, C) tensors.

    `params` holds the batched parameters (leading dim `n_points`), `shared` the unbatched
    tensors. One vmapped train-mode pass per batch; the in-place running-stat updates of
    ``F.batch_norm`` land in the batched buffers, exactly as in `recompute_in_place`.
    """
    stats, counters = fresh_statistics(module, n_points, next(iter(params.values())))
    shared = {k: v for k, v in shared.items() if k not in stats and k not in counters}
    layers = [m for _, m in batchnorm_layers(module)]

    def run(p: dict[str, Tensor], s: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(module, {**shared, **counters, **p, **s}, (xb,))

    for layer in layers:
        layer.train()
    try:
        for xb in batches:
            torch.vmap(run, in_dims=(0, 0, None))(params, stats, xb)
    finally:
        for layer in layers:
            layer.eval()
    return stats
