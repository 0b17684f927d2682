"""Reusing the first layer's work across points that differ only in their coefficients.

A Linear or convolution layer is linear in its weights. When the points are θ0 + Σ_j c_j d_j
and the layer sees the raw input X, its output at every point is

    f(X; W0 + Σ_j c_j D_j, b0 + Σ_j c_j e_j) = f(X; W0, b0) + Σ_j c_j f(X; D_j, e_j),

so the J + 1 terms are computed once and each point costs J scaled additions instead of a
matmul or convolution. The rest of the network runs as usual. Exact up to float rounding.

The layer is found by running the model once on a few examples: it is the first module with
parameters to run, it must be an ``nn.Linear`` or ``nn.Conv1d/2d/3d``, run exactly once, and
receive the model's input unchanged up to a reshape (e.g. after ``nn.Flatten``). Otherwise
there is nothing to reuse and the evaluator takes the plain path.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsdb.landscape.params import ParamLayout

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class FirstLayerCache:
    """The J + 1 first-layer outputs over the whole data, and a patch that serves their combination."""

    def __init__(self, layer: nn.Module, prefix: str, input_shape: tuple[int, ...],
                 output_shape: tuple[int, ...]) -> None:
        self.layer = layer
        self.input_shape = input_shape  # per example, as the layer sees it
        self.output_shape = output_shape
        self.weight_name = f"{prefix}weight"
        self.bias_name = f"{prefix}bias" if getattr(layer, "bias", None) is not None else None
        self.terms: Tensor | None = None  # (J + 1, N, *out)
        self.current: Tensor | None = None  # what the patched layer returns; None = compute normally
        original = layer.forward

        def forward(inp: Tensor) -> Tensor:
            return self.current if self.current is not None else original(inp)

        layer.forward = forward  # type: ignore[method-assign]  # the evaluator's private copy only

    @classmethod
    def find(cls, module: nn.Module, probe: Tensor) -> FirstLayerCache | None:
        """The reusable first layer of `module` (see the module docstring), or None."""
        calls: list[tuple[str, nn.Module, Tensor]] = []

        def record(name: str) -> Any:
            def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
                # only the first call's input is looked at: keeping every layer's would hold all the
                # probe's activations until the end (18 MB for bench_lm's 10.8M-parameter GPT-2)
                keep = not calls and bool(args) and isinstance(args[0], Tensor)
                calls.append((name, mod, args[0] if keep else torch.empty(0)))
            return hook

        owners = [(n, m) for n, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
        handles = [m.register_forward_pre_hook(record(n)) for n, m in owners]
        try:
            with torch.inference_mode():
                module(probe)
        finally:
            for h in handles:
                h.remove()
        if not calls:
            return None
        name, layer, inp = calls[0]
        if type(layer) not in _LAYERS or sum(1 for c in calls if c[1] is layer) != 1:
            return None
        if inp.shape[0] != probe.shape[0] or inp.numel() != probe.numel():
            return None
        if not torch.equal(inp.reshape(probe.shape), probe):
            return None
        with torch.inference_mode():
            out_shape = tuple(layer(inp[:1]).shape[1:])
        return cls(layer, f"{name}." if name else "", tuple(inp.shape[1:]), out_shape)

    def fan_in(self) -> int:
        """Multiply-adds per output element of the layer (what one point saves per output, in matmul work)."""
        weight: Tensor = self.layer.weight  # type: ignore[assignment]
        return math.prod(weight.shape[1:])

    def cache_bytes(self, n_examples: int, n_directions: int, itemsize: int) -> int:
        """Memory the J + 1 cached outputs take."""
        return (n_directions + 1) * n_examples * math.prod(self.output_shape) * itemsize

    def precompute(self, x: Tensor, layout: ParamLayout, theta0: Tensor, directions: Tensor) -> None:
        """Compute f(X; θ0's weights) and f(X; d_j's weights) for every direction, over all of `x`."""
        inp = x.reshape(x.shape[0], *self.input_shape)
        w_entry = layout.entry(self.weight_name)
        rows = [theta0] + list(directions)
        terms = []
        for vec in rows:
            weight = vec[w_entry.offset:w_entry.stop].view(w_entry.shape)
            bias = None
            if self.bias_name is not None:
                b_entry = layout.entry(self.bias_name)
                bias = vec[b_entry.offset:b_entry.stop]
            terms.append(self._apply(inp, weight, bias))
        self.terms = torch.stack(terms)

    def _apply(self, inp: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if isinstance(self.layer, nn.Linear):
            return F.linear(inp, weight, bias)
        return self.layer._conv_forward(inp, weight, bias)  # type: ignore[operator]

    def combine(self, coefficients: list[float], rows: slice) -> Tensor:
        """One point: f0 + Σ_j c_j f_j over examples `rows` (a new tensor; exact f0 when all c_j = 0)."""
        assert self.terms is not None
        out = torch.add(self.terms[0, rows], self.terms[1, rows], alpha=coefficients[0])
        for j, c in enumerate(coefficients[1:], start=2):
            out.add_(self.terms[j, rows], alpha=c)
        return out

    def combine_batched(self, coefficients: Tensor, rows: slice) -> Tensor:
        """B points at once: (B, n, *out) from coefficients (B, J)."""
        assert self.terms is not None
        dirs = self.terms[1:, rows]
        mixed = (coefficients.to(dirs) @ dirs.reshape(dirs.shape[0], -1)).view(-1, *dirs.shape[1:])
        return mixed + self.terms[0, rows]

    def release(self) -> None:
        self.terms = None
        self.current = None
