"""Hessian-vector products of a model's mean loss over a data split, exactly and without forming H.

`HessianOperator` is H = ∇²_θ L(θ), the Hessian of the mean loss over a split (or a fixed
seeded subset of it) with respect to the model's parameters, as a linear operator on flat
vectors. Products are exact (Pearlmutter 1994, "Fast Exact Multiplication by the Hessian",
Neural Computation 6(1)) and cost a small constant number of forward passes each:

* ``method="reverse"`` (double backward): the gradient g(θ) = ∇L is computed once per point
  with ``create_graph=True`` through `torch.func.functional_call`, and each product is the
  vector-Jacobian product H v = ∇_θ ⟨g(θ), v⟩ through that kept graph. This is what
  PyHessian does (Yao et al. 2020, "PyHessian: Neural Networks Through the Lens of the
  Hessian", IEEE BigData). Measured on a 2-core CPU for the digits MLP, one product costs
  about as much as the forward-and-backward pass that builds the graph, and about a third
  less than the same product through ``torch.func.vjp`` of ``torch.func.grad``.
* ``method="forward"`` (forward-over-reverse): ``torch.func.jvp`` of ``torch.func.grad``; no
  graph is kept between products (each one recomputes the forward pass), so memory stays at
  one batch's.

``kernel="auto"`` (the default) computes reverse-mode products of plain ``nn.Sequential``
stacks of Linear layers and elementwise activations (the `mlp` zoo model) with the R-operator
written out by hand (`sequential_hvp`): the same numbers to rounding, 20–30 % faster than the
double backward. ``kernel="autograd"`` always differentiates autograd's graph.

The data are processed in batches whose products are summed (the loss is the mean over all
examples, so H = Σ_b H_b). With the reverse method the graphs of all batches are kept when
they fit `memory_budget` (measured on a probe batch); otherwise each product rebuilds them.

Points and vectors are flat, in ``named_parameters()`` order (tied parameters once): the
parameter part of `ParamLayout.from_module(model)`. Buffers (BatchNorm running statistics)
are constants. ``bn="eval"`` (the default) normalizes with those running statistics, so the
Hessian is that of the loss the model computes in eval mode and does not depend on batching;
``bn="batch"`` normalizes each data batch by its own statistics, the loss training sees, whose
Hessian depends on `batch_size`. Dropout is off in both.

Loss: ``"cross_entropy"`` is the mean over examples of −log softmax(z)_y; ``"mse"`` the mean over
all output elements (as ``nn.MSELoss()``), the same definitions as the `Evaluator`.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from lsdb.landscape import sequential_hvp
from lsdb.landscape.float32_math import pinned_float32

Loss = Literal["cross_entropy", "mse", "token_cross_entropy"]
Method = Literal["reverse", "forward"]
Kernel = Literal["auto", "autograd", "sequential"]
BatchNormMode = Literal["eval", "batch"]

#: Graph memory (bytes) the reverse method may keep between products unless told otherwise.
DEFAULT_MEMORY_BUDGET = 1 << 30


def subset_indices(n: int, subset: int | None, seed: int) -> Tensor | None:
    """The sorted indices of a fixed random subset of `subset` of `n` examples (None: all of them).

    Drawn with ``torch.randperm`` from a generator seeded with `seed`: the same rule as the
    `Evaluator`'s `subset`, so both see the same examples for the same seed.
    """
    if subset is None or subset >= n:
        return None
    if subset < 1:
        raise ValueError(f"subset must be >= 1, got {subset}")
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:subset].sort().values


def flat_parameters(model: nn.Module, dtype: torch.dtype | None = None) -> Tensor:
    """The model's parameters as one detached vector in ``named_parameters()`` order."""
    return torch.cat([p.detach().reshape(-1).to(dtype or p.dtype) for _, p in model.named_parameters()])


class HessianOperator:
    """H, the Hessian of the mean loss of `model` on (`x`, `y`) at a point θ, as a linear operator.

    The caller's module is not modified (a private copy is moved to `device` and `dtype` and put
    in eval mode). `theta` is the point (default: the model's own parameters; see `set_point`).
    `subset=n` uses a fixed random subset of n examples drawn with `seed`. `batch_size` fixes
    the examples per pass (default: as many as `memory_budget` allows). `cache_graphs` keeps the
    reverse-mode graphs between products (None: when they fit `memory_budget`). `batched`
    multiplies several vectors in one vmapped pass in `matmat` (None: only on CUDA; on a CPU
    one vector at a time measured faster per vector). `kernel`: see the module docstring
    (``"sequential"`` refuses a model it cannot handle). `hvp_count` counts vector products.
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        loss: Loss = "cross_entropy",
        theta: Tensor | None = None,
        subset: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        method: Method = "reverse",
        bn: BatchNormMode = "eval",
        cache_graphs: bool | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        batched: bool | None = None,
        kernel: Kernel = "auto",
    ) -> None:
        if loss not in ("cross_entropy", "mse", "token_cross_entropy"):
            raise ValueError(f"loss must be 'cross_entropy', 'mse' or 'token_cross_entropy', got {loss!r}")
        if method not in ("reverse", "forward"):
            raise ValueError(f"method must be 'reverse' or 'forward', got {method!r}")
        if kernel not in ("auto", "autograd", "sequential"):
            raise ValueError(f"kernel must be 'auto', 'autograd' or 'sequential', got {kernel!r}")
        if bn not in ("eval", "batch"):
            raise ValueError(f"bn must be 'eval' or 'batch', got {bn!r}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must hold the same, non-zero number of examples ({len(x)}, {len(y)})")
        self.device = torch.device(device) if device is not None else x.device
        self.dtype = dtype or next(model.parameters()).dtype
        self.loss_name, self.method, self.bn = loss, method, bn
        self.module = _private_copy(model, self.device, self.dtype, bn)
        named = list(self.module.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.n = sum(self.sizes)
        self.indices = subset_indices(len(x), subset, seed)
        if self.indices is not None:
            x, y = x[self.indices.to(x.device)], y[self.indices.to(y.device)]
        self.x = x.to(self.device, self.dtype) if x.is_floating_point() else x.to(self.device)
        self.y = y.to(self.device, self.dtype) if loss == "mse" else y.to(self.device)
        self.n_examples = len(self.x)
        with torch.no_grad():
            out = self.module(self.x[:2])  # two: batch statistics need more than one
        if loss == "mse" and self.y.dim() == 1 and out.dim() == 2 and out.shape[1] == 1:
            self.y = self.y.unsqueeze(1)
        if loss == "cross_entropy" and out.dim() != 2:
            raise ValueError(f"cross_entropy needs (N, C) logits; the model returns {tuple(out.shape)}")
        self._norm = float(self.n_examples * (out[0].numel() if loss == "mse" else 1))
        if loss == "token_cross_entropy":  # the token-level mean: divide by the scored tokens
            self._norm = float(max(int((self.y != -100).sum()), 1))
        self.memory_budget = memory_budget
        self.batched = self.device.type == "cuda" if batched is None else batched
        self.hvp_count = 0
        simple = method == "reverse" and kernel != "autograd" and sequential_hvp.supports(self.module)
        per_example = (sequential_hvp.cache_bytes_per_example(self.module, self.x[:1]) if simple
                       else self._graph_bytes_per_example())
        if batch_size is None:
            batch_size = max(1, min(self.n_examples, memory_budget // max(per_example, 1)))
        self.batch_size = batch_size
        fits = per_example * self.n_examples <= memory_budget
        self.cache_graphs = method == "reverse" and (fits if cache_graphs is None else cache_graphs)
        self._graphs: list[Tensor] = []
        self._leaf: Tensor | None = None
        self._sequential: sequential_hvp.SequentialHessian | None = None
        wanted = kernel == "sequential" or (kernel == "auto" and self.cache_graphs)
        if wanted and simple:
            self._sequential = sequential_hvp.SequentialHessian(self.module, loss, self._norm)  # type: ignore[arg-type]
        elif kernel == "sequential":
            raise ValueError("kernel='sequential' needs method='reverse' and a plain nn.Sequential of Linear layers "
                             "and elementwise activations")
        self.loss: float = math.nan
        self._gradient: Tensor | None = None
        self.set_point(flat_parameters(self.module) if theta is None else theta)

    # -- the point ------------------------------------------------------------------------
    @pinned_float32
    def set_point(self, theta: Tensor) -> None:
        """Move to θ (a flat parameter vector): the loss, the gradient and (cached) graphs are rebuilt."""
        if theta.shape != (self.n,):
            raise ValueError(f"theta must be a vector of {self.n} parameters, got shape {tuple(theta.shape)}")
        self.theta = theta.detach().to(self.device, self.dtype).clone()
        self._graphs, self._leaf, self._gradient = [], None, None
        if self._sequential is not None:
            try:
                self.loss = self._sequential.prepare(self.unflatten(self.theta), self._batches())
                return
            except ValueError:  # e.g. a Linear layer on 3-d inputs: autograd from now on
                self._sequential = None
        leaf = self.theta.clone().requires_grad_(True)
        total, grad = 0.0, torch.zeros_like(self.theta)
        for xb, yb in self._batches():
            with torch.enable_grad():
                value = self._batch_loss(leaf, xb, yb)
                (g,) = torch.autograd.grad(value, leaf, create_graph=self.cache_graphs)
            if self.cache_graphs:
                self._graphs.append(g)
            total += float(value.detach())
            grad += g.detach()
        self._leaf = leaf if self.cache_graphs else None
        self.loss, self._gradient = total, grad

    @property
    @pinned_float32
    def gradient(self) -> Tensor:
        """∇L at the current point, flat (the hand-written kernel forms it on first use)."""
        if self._gradient is None:
            assert self._sequential is not None
            self._gradient = self._sequential.gradient()
        return self._gradient

    # -- products -------------------------------------------------------------------------
    @pinned_float32
    def matvec(self, v: Tensor) -> Tensor:
        """H v for one flat vector v (returned in the operator's dtype, on its device)."""
        if self._sequential is not None and v.shape == (self.n,):
            self.hvp_count += 1
            return self._sequential.hvp(self.unflatten(v.detach().to(self.device, self.dtype)))
        if self.cache_graphs and len(self._graphs) == 1 and v.shape == (self.n,):
            assert self._leaf is not None  # the common case, without matmat's bookkeeping
            u = v.detach().to(self.device, self.dtype)
            (hv,) = torch.autograd.grad(self._graphs[0], self._leaf, u, retain_graph=True)
            self.hvp_count += 1
            return hv
        return self.matmat(v.reshape(1, -1))[0]

    @pinned_float32
    def matmat(self, vectors: Tensor) -> Tensor:
        """H V for the rows of V, shape (m, n) -> (m, n)."""
        if vectors.dim() != 2 or vectors.shape[1] != self.n:
            raise ValueError(f"vectors must be (m, {self.n}), got {tuple(vectors.shape)}")
        vs = vectors.detach().to(self.device, self.dtype)
        if self._sequential is not None:
            self.hvp_count += len(vs)
            return torch.stack([self._sequential.hvp(self.unflatten(v)) for v in vs])
        if self.batched and len(vs) > 1:
            out = self._products(vs)
        else:
            out = torch.stack([self._products(v.unsqueeze(0))[0] for v in vs])
        self.hvp_count += len(vs)
        return out

    def dense(self) -> Tensor:
        """H as an (n, n) matrix, column by column (n products: for small models and tests)."""
        eye = torch.eye(self.n, dtype=self.dtype, device=self.device)
        h = torch.cat([self.matmat(eye[i:i + 64]) for i in range(0, self.n, 64)])
        return (h + h.T) / 2

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Name -> view of a flat parameter vector (the inverse of the layout)."""
        parts = vector.split(self.sizes)
        return {name: t.view(shape) for name, t, shape in zip(self.names, parts, self.shapes, strict=True)}

    # -- internals ------------------------------------------------------------------------
    def _products(self, vs: Tensor) -> Tensor:
        """Σ_b H_b v for each row of vs (m, n), in one pass per batch (m > 1 is vmapped)."""
        many = len(vs) > 1
        if self.cache_graphs:
            assert self._leaf is not None
            acc = torch.zeros_like(vs)
            for g in self._graphs:
                grads = vs if many else vs[0]
                (hv,) = torch.autograd.grad(g, self._leaf, grads, retain_graph=True, is_grads_batched=many)
                acc += hv if many else hv.unsqueeze(0)
            return acc
        acc = torch.zeros_like(vs)
        for xb, yb in self._batches():
            acc += self._batch_products(vs, xb, yb)
        return acc

    def _batch_products(self, vs: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        """H_b v for one batch without a kept graph (reverse: build and drop it; forward: jvp of grad)."""
        if self.method == "forward":

            def hvp(v: Tensor) -> Tensor:
                grad_fn = torch.func.grad(lambda t: self._batch_loss(t, xb, yb))
                return torch.func.jvp(grad_fn, (self.theta,), (v,))[1]

            return torch.func.vmap(hvp)(vs) if len(vs) > 1 else hvp(vs[0]).unsqueeze(0)
        leaf = self.theta.clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self._batch_loss(leaf, xb, yb), leaf, create_graph=True)
            many = len(vs) > 1
            (hv,) = torch.autograd.grad(g, leaf, vs if many else vs[0], is_grads_batched=many)
        return hv if many else hv.unsqueeze(0)

    def _batch_loss(self, theta: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        """Σ over the batch of the per-example loss, divided by the number of terms of the full mean."""
        out = functional_call(self.module, self.unflatten(theta), (xb,))
        if self.loss_name == "mse":
            return F.mse_loss(out, yb, reduction="sum") / self._norm
        if self.loss_name == "token_cross_entropy":
            return F.cross_entropy(out.flatten(0, -2), yb.flatten(), ignore_index=-100, reduction="sum") / self._norm
        return F.cross_entropy(out, yb, reduction="sum") / self._norm

    def _batches(self) -> list[tuple[Tensor, Tensor]]:
        bs = self.batch_size
        return [(self.x[i:i + bs], self.y[i:i + bs]) for i in range(0, self.n_examples, bs)]

    def _graph_bytes_per_example(self) -> int:
        """Bytes the reverse-mode graph keeps per example, measured on a probe batch of up to 64."""
        probe = min(self.n_examples, 64)
        seen: dict[int, int] = {}

        def pack(t: Tensor) -> Tensor:
            if t.device == self.device and t.numel() > 0:
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        leaf = flat_parameters(self.module).requires_grad_(True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            value = self._batch_loss(leaf, self.x[:probe], self.y[:probe])
            (g,) = torch.autograd.grad(value, leaf, create_graph=True)
        del g
        return int(sum(seen.values()) / probe) + 1


def _private_copy(model: nn.Module, device: torch.device, dtype: torch.dtype, bn: BatchNormMode) -> nn.Module:
    """A deep copy in eval mode with frozen parameters; with ``bn="batch"`` its BatchNorm layers
    use each batch's statistics and keep no running ones."""
    module = copy.deepcopy(model).to(device=device, dtype=dtype).eval().requires_grad_(False)
    if bn == "batch":
        for layer in module.modules():
            if isinstance(layer, _BatchNorm):
                layer.track_running_stats = False
                layer.running_mean = None
                layer.running_var = None
    return module

