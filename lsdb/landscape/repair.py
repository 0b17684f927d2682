"""REPAIR and BatchNorm reset: fixing the collapsed activation statistics of interpolated networks.

Jordan, Sedghi, Saukh, Entezari & Neyshabur 2023 ("REPAIR: REnormalizing Permuted Activations
for Interpolation Repair", ICLR) observe that the midpoint of two aligned networks suffers
*variance collapse*: each hidden unit's pre-activation standard deviation shrinks, the more so
the deeper the layer, and this (not the alignment) causes most of the remaining barrier. Their
fix (§3, eq. (2)–(3)) rescales every unit of the interpolated network θ_α so that its mean and
standard deviation over the data equal the interpolation of the endpoints' statistics,

    μ_α = (1 − α) μ_A + α μ_B,   σ_α = (1 − α) σ_A + α σ_B,

implemented here by folding the affine correction into the producing layer: with (μ', σ') the
unit's statistics in θ_α, W ← s W and b ← s (b − μ') + μ_α, s = σ_α / √(σ'² + ε), with ε = 1e-5
BatchNorm's (their implementation inserts BatchNorm layers, so a unit that is constant on the
data is not blown up). Layers are
corrected in graph order, each measured after the ones before it were corrected (what their
BatchNorm-insertion-and-reset implementation computes). For networks with BatchNorm the same
collapse is undone by recomputing the running statistics at θ_α ("reset BN", their §3.1; the
existing `lsdb.landscape.swa.update_bn`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lsdb.landscape.swa import batchnorm_modules, update_bn


@dataclass(frozen=True)
class UnitStats:
    """Per-unit (output channel) mean and standard deviation of one layer's output over the data."""

    mean: Tensor
    std: Tensor


def layer_statistics(model: nn.Module, layers: Sequence[str], batches: Iterable[Tensor]) -> dict[str, UnitStats]:
    """Mean and std of each output channel of the modules `layers` (Linear/Conv), streamed over `batches`."""
    sums: dict[str, list[Tensor]] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> object:
        def record(_m: nn.Module, _inp: object, out: Tensor) -> None:
            rows = out.detach().movedim(1, -1).reshape(-1, out.shape[1]).double()
            s = sums.setdefault(name, [torch.zeros(out.shape[1], dtype=torch.float64) for _ in range(2)])
            s[0] += rows.sum(0).cpu()
            s[1] += (rows * rows).sum(0).cpu()
            counts[name] = counts.get(name, 0) + len(rows)
        return record

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in layers]  # type: ignore[arg-type]
    try:
        with torch.no_grad():
            for xb in batches:
                model(xb)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in layers:
        if name not in counts:
            raise ValueError(f"layer '{name}' saw no data")
        mean = sums[name][0] / counts[name]
        var = (sums[name][1] / counts[name] - mean**2).clamp_min(0)
        out[name] = UnitStats(mean, var.sqrt())
    return out


def interpolate_stats(a: Mapping[str, UnitStats], b: Mapping[str, UnitStats], alpha: float) -> dict[str, UnitStats]:
    """REPAIR's targets (Jordan et al. 2023, eq. (3)): μ_α, σ_α interpolated between the endpoints."""
    return {n: UnitStats((1 - alpha) * a[n].mean + alpha * b[n].mean, (1 - alpha) * a[n].std + alpha * b[n].std)
            for n in a}


#: BatchNorm's ε: REPAIR's scale is σ_α / √(σ'² + ε), as with the BatchNorm layers of Jordan et al.
REPAIR_EPS = 1e-5


def repair(model: nn.Module, targets: Mapping[str, UnitStats], batches: Sequence[Tensor],
           eps: float = REPAIR_EPS) -> None:
    """Rescale, in place and in the order given, each layer of `targets` so its units have the target statistics.

    Exact for ``eps=0`` (up to units that are constant on the data). A layer without bias gets
    only the scale. `batches` are read once per layer.
    """
    for name, target in targets.items():
        layer = model.get_submodule(name)
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, Tensor):
            raise ValueError(f"REPAIR: layer '{name}' has no weight to rescale")
        current = layer_statistics(model, [name], batches)[name]
        scale = target.std / (current.std**2 + eps).sqrt().clamp_min(1e-12)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        with torch.no_grad():
            weight.mul_(scale.to(weight.dtype).reshape(shape).to(weight.device))
            bias = getattr(layer, "bias", None)
            if isinstance(bias, Tensor):
                fixed = (bias.double().cpu() - current.mean) * scale + target.mean
                bias.copy_(fixed.to(bias.dtype))


def reset_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> bool:
    """Recompute BatchNorm running statistics at the model's current weights; False when it has none."""
    if not batchnorm_modules(model):
        return False
    update_bn(model, batches)
    return True


def interpolate_state(a: Mapping[str, Tensor], b: Mapping[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """(1 − α) θ_A + α θ_B for floating tensors; other tensors (counters) from A."""
    return {k: torch.lerp(v, b[k].to(v.dtype), alpha) if v.is_floating_point() else v for k, v in a.items()}


__all__ = [
    "REPAIR_EPS",
    "UnitStats",
    "interpolate_state",
    "interpolate_stats",
    "layer_statistics",
    "repair",
    "reset_batchnorm",
]
