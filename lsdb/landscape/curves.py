"""Curves of low loss between two networks: Bezier curves and polygonal chains in parameter space.

Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS)
connect two trained networks ŵ1, ŵ2 by a parametric curve φ_θ(t), t ∈ [0, 1], with φ_θ(0) = ŵ1
and φ_θ(1) = ŵ2, and fit the curve's free points θ by minimizing the loss averaged along it,
ℓ(θ) = ∫₀¹ L(φ_θ(t)) dt = E_{t~U(0,1)} L(φ_θ(t)) (§3.1, eq. (2)), with SGD that draws one t per
minibatch. Two families (§3.2), generalised here to any number of bends:

* a **Bezier curve** with control points w_0 = ŵ1, w_1 … w_n (the bends), w_{n+1} = ŵ2:
  φ(t) = Σ_i B_{i,n+1}(t) w_i with the Bernstein polynomials B_{i,m}(t) = C(m, i) tⁱ (1 − t)^{m−i}
  (one bend: the quadratic curve (1 − t)² ŵ1 + 2t(1 − t) θ + t² ŵ2 of the paper);
* a **polygonal chain** through the same points at t = i / (n + 1), linear in between (one bend:
  the paper's two-segment chain through θ at t = 1/2).

Both are φ(t) = Σ_i c_i(t) w_i with coefficients that sum to one and are exactly (1, 0, …, 0) at
t = 0 and (0, …, 0, 1) at t = 1, so the curve's end points equal the given networks bit for bit.
`CurveModel` applies such a curve to any module through ``torch.func.functional_call`` over its
parameter dictionary; the bends are initialized on the segment between the ends (where the curve
is the straight line) and are the only trainable tensors unless an end is left free. BatchNorm
statistics are not on the curve: networks on it are evaluated after recomputing them at each t
(`CurveModel.state_at`, or an evaluator with ``bn="recompute"``), as the paper does.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lsdb.landscape.swa import update_bn

CURVES = ("bezier", "polychain")
SCHEDULES = ("garipov", "constant")


def bezier_coefficients(t: Tensor, n_points: int) -> Tensor:
    """Bernstein weights B_{i,m}(t), i = 0..m, m = n_points − 1: float64 (len(t), n_points) (§3.2).

    Exactly (1, 0, …, 0) at t = 0 and (0, …, 0, 1) at t = 1; rows sum to one up to rounding.
    """
    if n_points < 1:
        raise ValueError(f"a Bezier basis needs at least one point, got {n_points}")
    tt = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    m = n_points - 1
    i = torch.arange(n_points, dtype=torch.float64)
    binom = torch.tensor([math.comb(m, k) for k in range(n_points)], dtype=torch.float64)
    return binom * tt.pow(i) * (1.0 - tt).pow(m - i)


def polychain_coefficients(t: Tensor, n_points: int) -> Tensor:
    """Hat functions max(0, 1 − |t (n_points − 1) − i|): the chain through point i at t = i / (n_points − 1)."""
    if n_points < 2:
        raise ValueError(f"a curve needs at least 2 points, got {n_points}")
    tt = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    i = torch.arange(n_points, dtype=torch.float64)
    return (1.0 - (tt * (n_points - 1) - i).abs()).clamp_min(0.0)


def curve_coefficients(kind: str, t: Tensor, n_points: int) -> Tensor:
    """The coefficients c_i(t) of a ``bezier`` or ``polychain`` curve with `n_points` control points."""
    if kind == "bezier":
        return bezier_coefficients(t, n_points)
    if kind == "polychain":
        return polychain_coefficients(t, n_points)
    raise ValueError(f"unknown curve {kind!r}; available: {', '.join(CURVES)}")


def gauss_legendre(n: int) -> tuple[Tensor, Tensor]:
    """Nodes and weights of n-point Gauss–Legendre quadrature on [0, 1] (Golub–Welsch), float64."""
    k = torch.arange(1, n, dtype=torch.float64)
    off = k / torch.sqrt(4 * k * k - 1)
    jacobi = torch.diag(off, 1) + torch.diag(off, -1)
    nodes, vectors = torch.linalg.eigh(jacobi)
    return (nodes + 1) / 2, vectors[0].square()  # weights 2 v0² on [−1, 1], halved on [0, 1]


def curve_length(points: Tensor, kind: str, nodes: int = 64) -> float:
    """Length ∫₀¹ ‖φ'(t)‖ dt of the curve with control points `points` (n_points, P).

    A chain's length is the sum of its segments. A Bezier curve's speed is
    ‖m Σ_i B_{i,m−1}(t) (w_{i+1} − w_i)‖, integrated by Gauss–Legendre quadrature over the Gram
    matrix of the differences (exact for the straight line, where the speed is constant).
    """
    diffs = (points[1:] - points[:-1]).to(torch.float64)
    gram = diffs @ diffs.T
    if kind == "polychain":
        return float(gram.diagonal().clamp_min(0).sqrt().sum())
    if kind != "bezier":
        raise ValueError(f"unknown curve {kind!r}; available: {', '.join(CURVES)}")
    m = len(points) - 1
    t, w = gauss_legendre(nodes)
    b = bezier_coefficients(t, m).to(gram.device)  # degree m − 1: m coefficients
    speed = m * torch.einsum("ki,ij,kj->k", b, gram, b).clamp_min(0).sqrt()
    return float((speed * w.to(speed.device)).sum())


class CurveModel(nn.Module):
    """φ(t) = Σ_i c_i(t) w_i over the parameters of `module` (Garipov et al. 2018, §3).

    The control points live in one flat vector per point, laid out as ``module.named_parameters()``
    (tied parameters once). Fixed points (by default the two ends) are buffers; the others form the
    trainable ``free_points`` (k, P). A missing end that is not fixed starts at `module`'s own
    weights; `bends` interior points start evenly spaced on the segment between the ends.
    Buffers (BatchNorm statistics) are not on the curve: they come from `module`, or are recomputed.
    With a bool mask `trainable` (P,), only those entries of the free points are trained; the others stay
    at their initial values (a bend's: on the segment between the ends).
    """

    fixed_points: Tensor

    def __init__(
        self,
        module: nn.Module,
        start: Mapping[str, Tensor] | None,
        end: Mapping[str, Tensor] | None,
        bends: int = 1,
        kind: str = "bezier",
        fix_start: bool = True,
        fix_end: bool = True,
        trainable: Tensor | None = None,
    ) -> None:
        super().__init__()
        if kind not in CURVES:
            raise ValueError(f"unknown curve {kind!r}; available: {', '.join(CURVES)}")
        if bends < 1:
            raise ValueError(f"a curve needs at least one bend, got {bends}")
        for fixed, given, which in ((fix_start, start, "start"), (fix_end, end, "end")):
            if fixed and given is None:
                raise ValueError(f"cannot fix the {which} of the curve: no {which} point was given")
        self.kind, self.n_bends = kind, bends
        self.module = copy.deepcopy(module).requires_grad_(False)
        named = list(self.module.named_parameters())
        #: functional_call's weight untying costs time per call; only needed when a tensor has two names.
        self.tied = len(list(self.module.named_parameters(remove_duplicate=False))) != len(named)
        self.names = tuple(n for n, _ in named)
        self.shapes = tuple(tuple(p.shape) for _, p in named)
        self.numels = tuple(p.numel() for _, p in named)
        like = named[0][1] if named else torch.zeros(0)
        own = torch.cat([p.detach().reshape(-1) for _, p in named]) if named else like.new_zeros(0)
        w0 = self.flatten(start, like) if start is not None else own.clone()
        w1 = self.flatten(end, like) if end is not None else own.clone()
        alphas = torch.arange(1, bends + 1, dtype=torch.float64) / (bends + 1)
        inner = [w0 + float(a) * (w1 - w0) for a in alphas]
        points = [w0, *inner, w1]
        is_fixed = [fix_start, *([False] * bends), fix_end]
        self.fixed_index = [i for i, f in enumerate(is_fixed) if f]
        self.free_index = [i for i, f in enumerate(is_fixed) if not f]
        fixed_rows = [points[i] for i in self.fixed_index]
        self.register_buffer("fixed_points", torch.stack(fixed_rows) if fixed_rows else own.new_zeros(0, len(own)))
        self.free_points = nn.Parameter(torch.stack([points[i] for i in self.free_index]))
        #: bool (P,) of the entries training may move (None: all); the others keep their initial values
        self.trainable = None if trainable is None else self._mask(trainable, own)

    def _mask(self, trainable: Tensor, like: Tensor) -> Tensor:
        if trainable.shape != (len(like),):
            raise ValueError(f"the trainable mask has shape {tuple(trainable.shape)}, expected ({len(like)},)")
        return trainable.to(device=like.device, dtype=torch.bool)

    @property
    def n_points(self) -> int:
        return self.n_bends + 2

    @property
    def n_params(self) -> int:
        return sum(self.numels)

    def flatten(self, state: Mapping[str, Tensor], like: Tensor) -> Tensor:
        """The parameters of a state dict as one vector in this curve's layout, on `like`'s device and dtype."""
        missing = [n for n in self.names if n not in state]
        if missing:
            raise ValueError(f"the state dict lacks parameter '{missing[0]}'")
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            tensor = state[name]
            if tuple(tensor.shape) != shape:
                raise ValueError(f"parameter '{name}' has shape {tuple(tensor.shape)}, expected {shape}")
            parts.append(tensor.detach().reshape(-1).to(like.device, like.dtype))
        return torch.cat(parts) if parts else like.new_zeros(0)

    def control_points(self) -> Tensor:
        """All control points in order, (n_points, P), detached."""
        out = self.free_points.new_empty(self.n_points, self.n_params)
        with torch.no_grad():
            if self.fixed_index:
                out[self.fixed_index] = self.fixed_points
            out[self.free_index] = self.free_points
        return out

    def coefficients(self, t: Tensor | float) -> Tensor:
        """c_i(t) for each t, float64 (len(t), n_points)."""
        return curve_coefficients(self.kind, torch.as_tensor(t, dtype=torch.float64), self.n_points)

    def weights(self, t: Tensor | float) -> Tensor:
        """φ(t): (P,) for a scalar t, (K, P) for K values; differentiable in the free points."""
        scalar = torch.as_tensor(t).dim() == 0
        c = self.coefficients(t).to(self.free_points.device, self.free_points.dtype)
        theta = self._combine(c)
        return theta[0] if scalar else theta

    def _combine(self, c: Tensor) -> Tensor:
        return self.combine(c[..., self.free_index], c[..., self.fixed_index] if self.fixed_index else None)

    def combine(self, free_coefficients: Tensor, fixed_coefficients: Tensor | None) -> Tensor:
        """Σ_i c_i w_i from the coefficients of the free and of the fixed points ((k,) or (K, k) each)."""
        if fixed_coefficients is None:
            return free_coefficients @ self.free_points
        fixed = fixed_coefficients @ self.fixed_points
        if free_coefficients.dim() == 1:
            return torch.addmv(fixed, self.free_points.t(), free_coefficients)
        return torch.addmm(fixed, free_coefficients, self.free_points)

    def parameters_at(self, theta: Tensor) -> dict[str, Tensor]:
        """Name -> view of the flat vector `theta` (P,)."""
        return {
            name: part.view(shape)
            for name, shape, part in zip(self.names, self.shapes, theta.split(self.numels), strict=True)
        }

    def forward_at(self, theta: Tensor, x: Tensor) -> Tensor:
        """The module's output on `x` with its parameters at `theta` (buffers: the module's own)."""
        return functional_call(self.module, self.parameters_at(theta), (x,), tie_weights=self.tied)

    def loss_and_gradient(self, theta: Tensor, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
                          ) -> tuple[Tensor, Tensor]:
        """(detached loss, ∂loss/∂θ as a flat vector) of the network at `theta` on one minibatch.

        The parameters are fresh leaf views of `theta`, so back-propagation stops at them exactly as
        in ordinary training; the gradient of the control points is then c_i(t) · ∂L/∂θ, one rank-k
        update (autograd through the views and the combination costs a third of a small net's epoch).
        """
        leaves = {name: part.detach().requires_grad_() for name, part in self.parameters_at(theta).items()}
        loss = loss_fn(functional_call(self.module, leaves, (x,), tie_weights=self.tied), y)
        loss.backward()
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves.values()]
        return loss.detach(), torch.cat([g.reshape(-1) for g in grads])

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        return self.forward_at(self.weights(t), x)

    def length(self, nodes: int = 64) -> float:
        """The curve's length in parameter space (see `curve_length`)."""
        return curve_length(self.control_points(), self.kind, nodes)

    @torch.no_grad()
    def state_at_point(self, theta: Tensor, bn_batches: Iterable[Tensor] | None = None) -> dict[str, Tensor]:
        """The module's full state dict with parameters `theta`; BatchNorm statistics recomputed from
        `bn_batches` when given (else the module's buffers)."""
        for (name, shape), part in zip(zip(self.names, self.shapes, strict=True), theta.split(self.numels),
                                       strict=True):
            self.module.get_parameter(name).copy_(part.view(shape))
        if bn_batches is not None:
            update_bn(self.module, bn_batches)
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def state_at(self, t: float, bn_batches: Iterable[Tensor] | None = None) -> dict[str, Tensor]:
        """The network at φ(t) as a state dict, with BatchNorm recomputed at t from `bn_batches`."""
        return self.state_at_point(self.weights(float(t)).detach(), bn_batches)

    def control_state(self, index: int, bn_batches: Iterable[Tensor] | None = None) -> dict[str, Tensor]:
        """Control point `index` (0: start, n_points − 1: end) as a state dict (BatchNorm as in `state_at`)."""
        return self.state_at_point(self.control_points()[index], bn_batches)


def curve_lr_factor(fraction: float) -> float:
    """The authors' schedule for curves and end points: 1 up to half the run, linear to 0.01 at 90 %, then 0.01."""
    if fraction <= 0.5:
        return 1.0
    if fraction <= 0.9:
        return 1.0 - (fraction - 0.5) / 0.4 * 0.99
    return 0.01


@dataclass(frozen=True)
class CurveTraining:
    """Hyperparameters of `train_curve`. `weight_decay` is the ℓ2 penalty (wd/2)·‖φ(t)‖² on the
    network at the sampled t, as the paper regularizes the curve (§3.1, their ``l2_regularizer``)."""

    epochs: int = 20
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    loss: str = "cross_entropy"
    schedule: str = "garipov"

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch size must be positive, got {self.epochs} and {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1 and weight_decay >= 0")
        if self.loss not in ("cross_entropy", "mse"):
            raise ValueError(f"loss must be cross_entropy or mse, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


@dataclass(frozen=True)
class CurveFit:
    """What `train_curve` did: the mean training objective per epoch, the steps taken, whether it stopped early."""

    epoch_loss: list[float]
    steps: int
    stopped: bool


def train_curve(
    curve: CurveModel,
    x: Tensor,
    y: Tensor,
    config: CurveTraining,
    generator: torch.Generator,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CurveFit:
    """Minimize E_{t~U(0,1)} L(φ(t)) by SGD over the free points, one t per minibatch (§3.1, eq. (2)).

    Each epoch draws a permutation of the examples and one t per minibatch from `generator` (a
    CPU generator), so a seed fixes the run; dropout draws from a private copy of the global RNG
    seeded from `generator`. BatchNorm layers normalize with the minibatch's own statistics.
    The reported loss excludes the ℓ2 penalty, whose gradient is added directly. A non-finite
    epoch loss raises `FloatingPointError`. `on_epoch(epoch, mean_loss)` after each
    epoch (1-based); `should_stop()` is checked after every step.
    """
    config.check()
    n = len(x)
    if n == 0:
        raise ValueError("training a curve needs training examples")
    loss_fn = F.cross_entropy if config.loss == "cross_entropy" else F.mse_loss
    free = curve.free_points
    velocity = torch.zeros_like(free)
    n_batches = math.ceil(n / config.batch_size)
    dropout_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    epoch_loss: list[float] = []
    steps, stopped = 0, False
    curve.module.train()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(dropout_seed)
            for epoch in range(1, config.epochs + 1):
                factor = curve_lr_factor(epoch / config.epochs) if config.schedule == "garipov" else 1.0
                lr = config.lr * factor
                order = torch.randperm(n, generator=generator).to(x.device)
                ts = torch.rand(n_batches, generator=generator, dtype=torch.float64)
                coefs = curve.coefficients(ts).to(free.device, free.dtype)
                free_c = coefs[:, curve.free_index].contiguous()
                fixed_c = coefs[:, curve.fixed_index].contiguous() if curve.fixed_index else None
                losses = []
                for b in range(n_batches):
                    idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                    with torch.no_grad():
                        theta = curve.combine(free_c[b], None if fixed_c is None else fixed_c[b])
                    loss, grad = curve.loss_and_gradient(theta, x[idx], y[idx], loss_fn)
                    if config.weight_decay:  # ∇_φ of (wd/2)‖φ(t)‖²
                        grad.add_(theta, alpha=config.weight_decay)
                    if curve.trainable is not None:  # frozen entries get no gradient, hence never move
                        grad.mul_(curve.trainable)
                    with torch.no_grad():  # SGD with momentum as torch.optim.SGD, fused with the chain rule
                        velocity.mul_(config.momentum).addr_(free_c[b], grad)  # ∂L/∂w_i = c_i(t) ∂L/∂φ
                        free.sub_(velocity, alpha=lr)
                    steps += 1
                    losses.append(loss.detach())
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                mean = float(torch.stack(losses).double().mean())
                if not math.isfinite(mean):
                    raise FloatingPointError(f"curve training diverged in epoch {epoch} (mean loss {mean})")
                epoch_loss.append(mean)
                if on_epoch is not None:
                    on_epoch(epoch, mean)
                if stopped:
                    break
    finally:
        curve.module.eval()
    return CurveFit(epoch_loss, steps, stopped)
