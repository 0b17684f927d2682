"""What one forward pass costs, per example, measured on a probe batch: the elements it keeps live and the
FLOPs of its matrix products. The evaluator's `strategy="auto"` rule and its memory plan read them."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def probe_costs(module: nn.Module, probe: Tensor) -> tuple[int, float]:
    """Per example: elements of the input and of every leaf module's output (an upper bound on live
    memory), and FLOPs of the conv and linear layers (2 per multiply-add)."""
    total = [probe[0].numel()]
    flops = [0.0]

    def hook(m: nn.Module, _a: object, out: object) -> None:
        if isinstance(out, Tensor):
            total.append(out[0].numel() if out.dim() else 1)
            flops[0] += 2.0 * total[-1] * fan_in(m, out)

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            module(probe)
    finally:
        for h in handles:
            h.remove()
    return max(1, sum(total)), flops[0]


def fan_in(m: nn.Module, out: Tensor) -> int:
    """Multiply-adds per output element of a convolution or a matrix-product layer: nn.Linear, and
    any other layer with a 2-D weight one of whose sides is the output's width (transformers' Conv1D,
    weight (in, out)); 0 for the rest (embeddings, norms, activations)."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return m.weight[0].numel()
    weight = getattr(m, "weight", None)
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) or not isinstance(weight, Tensor) or weight.dim() != 2 \
            or out.dim() == 0 or out.shape[-1] not in weight.shape:
        return 0
    return weight.numel() // out.shape[-1]
