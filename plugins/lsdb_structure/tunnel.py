"""`tunnel`: a low-loss path between two optima by hyperplane-constrained optimization (Fort & Jastrzebski 2019).

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§4.3, Fig. 3) split the segment between two optima into K pieces, minimize the training loss
within the hyperplane normal to the segment at each interior point (starting from the
segment, gradients projected onto the hyperplane), and join the optimized points. With
``method=path`` the knots are then optimized further for the mean loss along the whole
polygonal path (still each in its hyperplane), which removes the barriers that optimizing the
knots alone can leave between them on small models. The math is `lsdb.landscape.tunnels`.

The interior knots are stored as checkpoints ("tunnel knot k/K"). Loss and error are evaluated
along the path and along the straight line at the same t; the deviations of the knots from the
line, and their cosine-similarity matrix (the paper's Fig. 3: two clusters, one per optimum),
are stored too. Barriers are measured as in `interpolate` (the largest rise above the straight
line between the two end values). BatchNorm networks are optimized with batch statistics and
evaluated with recomputed statistics; their stored knots carry linearly interpolated buffers.
With ``align=weights|activations`` the end's hidden units are first permuted to match the
start's (Ainsworth et al. 2023, "Git Re-Basin"; `Context.aligned`), so the tunnel is dug modulo
permutation symmetry.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lsdb.landscape import ParamLayout, barrier
from lsdb.landscape.tunnels import Tunnel, cosine_matrix, optimize_path, polyline, tunnel, two_block_split
from lsdb.plugin import (
    ALIGNMENTS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    accuracy_of,
    finite_scalars,
    single,
)

SPLITS = ("train", "test")
METHODS = ("knots", "path")


class ModelLoss:
    """The training loss of a model at a flat parameter vector (the parameter part of `ctx.layout(model)`).

    A differentiable `Objective` for `lsdb.landscape.tunnels`: ``functional_call`` on a private copy
    in eval mode (no dropout), except that BatchNorm layers use batch statistics, as in training.
    Each call draws a fresh minibatch from a seeded generator (the whole split when `batch_size`
    is 0 or covers it).
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, loss: str, batch_size: int,
                 generator: torch.Generator) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.has_bn = False
        for m in self.module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
                self.has_bn = True
        self.layout = ParamLayout.from_module(self.module, buffers=True).parameters_only()
        self.buffers = {n: b.detach().clone() for n, b in self.module.named_buffers()}
        self.x, self.y, self.loss = x, y, loss
        self.batch_size = batch_size if 0 < batch_size < len(x) else 0
        self.generator = generator

    def __call__(self, theta: Tensor) -> Tensor:
        x, y = self.x, self.y
        if self.batch_size:
            idx = torch.randint(len(x), (self.batch_size,), generator=self.generator).to(x.device)
            x, y = x[idx], y[idx]
        named = self.layout.unflatten(theta)
        buffers = {n: b.clone() for n, b in self.buffers.items()} if self.has_bn else self.buffers
        out = functional_call(self.module, {**buffers, **named}, (x,))
        return F.cross_entropy(out, y) if self.loss == "cross_entropy" else F.mse_loss(out, y.to(out).view_as(out))


def state_of(layout: ParamLayout, vector: Tensor, like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A full point (parameters then buffers) as a state dict on the CPU with the dtypes of `like`;
    tensors outside the layout (integer buffers such as ``num_batches_tracked``) are copied from `like`."""
    named = layout.unflatten(vector.detach())
    return {k: (named[k].to("cpu", like[k].dtype).clone() if k in named else v.clone()) for k, v in like.items()}


def evaluate_points(ctx: Context, model: nn.Module, points: Tensor, splits: tuple[str, ...], bn: str,
                    start: float = 0.0, stop: float = 1.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split -> (loss, accuracy) at full points (N, P) (accuracy NaN for a regression loss)."""
    out = {}
    for i, split in enumerate(splits):
        ev = ctx.evaluator(model, split, bn)
        result = ev.at_points(points, should_cancel=ctx.should_cancel)
        loss = result.loss.double().numpy()
        out[split] = (loss, accuracy_of(result, loss.shape))
        ctx.progress(start + (stop - start) * (i + 1) / len(splits), f"evaluated {split}")
    return out


def path_scalars(prefix: str, split: str, t: np.ndarray, loss: np.ndarray, acc: np.ndarray) -> dict[str, float]:
    """Barriers (as `interpolate`'s) and the maximum of loss and error along one path on one split."""
    tag = "" if split == "train" else f"{split}_"
    out: dict[str, float] = {f"{prefix}_{tag}max_loss": float(np.nanmax(loss))}
    found = barrier(t, loss)
    if found is not None:
        out[f"{prefix}_{tag}loss_barrier"] = found[0]
    if np.isfinite(acc).any():
        found = barrier(t, 1.0 - acc)
        if found is not None:
            out[f"{prefix}_{tag}error_barrier"] = found[0]
        out[f"{prefix}_{tag}max_error"] = float(np.nanmax(1.0 - acc))
    return out


@dataclass(frozen=True)
class TunnelParams:
    """Parameters of `tunnel`."""

    pieces: int = field(default=8, metadata={"help": "K: the segment is split into K pieces (K−1 knots)", "min": 2})
    steps: int = field(default=100, metadata={"help": "optimization steps per knot, within its hyperplane", "min": 0})
    lr: float = field(default=0.05, metadata={"help": "learning rate of the projected SGD", "min": 0.0})
    momentum: float = field(default=0.9, metadata={"help": "momentum of the projected SGD", "min": 0.0})
    batch_size: int = field(default=256, metadata={"help": "minibatch size of the training loss (0: full batch)",
                                                   "min": 0})
    method: str = field(default="knots", metadata={
        "help": "knots: optimize each knot in its hyperplane (the paper); path: then also the mean loss along "
                "the whole polygonal path", "choices": METHODS})
    path_steps: int = field(default=200, metadata={"help": "method=path: steps of the whole-path optimization",
                                                   "min": 0})
    per_segment: int = field(default=4, metadata={"help": "evaluation points per segment (knots included)",
                                                  "min": 1})
    splits: tuple[str, ...] = field(default=SPLITS, metadata={"help": "splits to evaluate: train, test or both"})
    align: str = field(default="none", metadata={
        "help": "permute the end's hidden units to match the start's first: weights or activations matching "
                "(Ainsworth et al. 2023), or none", "choices": ALIGNMENTS, "key_omit_default": True})

    def __post_init__(self) -> None:
        if self.momentum >= 1:
            raise ValueError(f"momentum must be below 1, got {self.momentum}")
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def run_tunnel(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: TunnelParams) -> AnalysisOutput:
    """Fort & Jastrzebski's tunnel between the two inputs, evaluated along the path and the line."""
    start_ckpt, end_ckpt = single(inputs, "start"), single(inputs, "end")
    ctx.progress(0.0, "loading checkpoints")
    like = start_ckpt.state()
    model = ctx.build_model(like)
    layout = ctx.layout(model)
    if params.align != "none":
        ctx.progress(0.0, f"{params.align} matching")
    a, b = ctx.point(layout, start_ckpt), ctx.point(layout, end_ckpt, align=params.align, reference=start_ckpt)
    n_par = layout.n_params
    if torch.equal(a[:n_par], b[:n_par]):
        aligned = f" once aligned ({params.align})" if params.align != "none" else ""
        raise BadInput(f"tunnel: {start_ckpt.name} and {end_ckpt.name} have the same weights{aligned}; "
                       "there is no segment")
    x, y = ctx.data("train")
    objective = ModelLoss(model, x, y, ctx.loss, params.batch_size, ctx.generator(1))
    total_steps = (params.pieces - 1) * params.steps + (params.path_steps if params.method == "path" else 0)

    def report(done: int, _total: int, offset: int = 0) -> None:
        ctx.progress(0.8 * (offset + done) / max(total_steps, 1), "optimizing knots" if not offset else "whole path")

    knotted = tunnel(objective, a[:n_par], b[:n_par], params.pieces, params.steps, params.lr, params.momentum, report)
    path = knotted
    if params.method == "path" and params.path_steps:
        offset = (params.pieces - 1) * params.steps
        path = optimize_path(objective, knotted, params.path_steps, params.lr, params.momentum, ctx.generator(2),
                             lambda d, t: report(d, t, offset))
    knots = _with_buffers(path.knots, a, b, path.t)
    points, t = polyline(knots, params.per_segment)
    line, _ = polyline(_with_buffers(path.line, a, b, path.t), params.per_segment)
    bn = "recompute" if objective.has_bn else "eval"
    on_path = evaluate_points(ctx, model, points, params.splits, bn, 0.8, 0.9)
    on_line = evaluate_points(ctx, model, line, params.splits, bn, 0.9, 1.0)
    arrays, scalars = _outputs(path, t.numpy(), on_path, on_line)
    arrays["knot_loss_history"] = knotted.history.numpy()
    if path is not knotted:
        arrays["path_loss_history"] = path.history[0].numpy()
    checkpoints = [
        NewCheckpointOutput(state_of(layout, knots[k], like), label=f"tunnel knot {k}/{params.pieces}")
        for k in range(1, params.pieces)
    ]
    attrs = {"start": start_ckpt.name, "end": end_ckpt.name, "bn": bn, "align": params.align}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=checkpoints, attrs=attrs)


def _with_buffers(params_points: Tensor, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Append to parameter points the buffers of the straight line at the same t."""
    n_par = params_points.shape[1]
    if n_par == a.shape[0]:
        return params_points
    tt = t.to(a).unsqueeze(1)
    return torch.cat([params_points, a[n_par:] + tt * (b[n_par:] - a[n_par:])], dim=1)


def _outputs(path: Tunnel, t: np.ndarray, on_path: Mapping[str, tuple[np.ndarray, np.ndarray]],
             on_line: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    deviations = path.deviations
    cos = cosine_matrix(deviations)
    split_at, contrast = two_block_split(cos)
    arrays: dict[str, np.ndarray] = {
        "t": t,
        "knot_t": path.t.numpy(),
        "deviation_cosine": cos.numpy(),
        "deviation_norm": torch.linalg.vector_norm(deviations, dim=1, dtype=torch.float64).cpu().numpy(),
    }
    scalars: dict[str, float] = {
        "distance": float(torch.linalg.vector_norm((path.knots[-1] - path.knots[0]).double())),
        "deviation_contrast": contrast,
        "max_deviation_norm": float(arrays["deviation_norm"].max()) if len(deviations) else 0.0,
    }
    if split_at:
        scalars["deviation_split_t"] = float(path.t[split_at + 1] + path.t[split_at]) / 2
    for name, results in (("path", on_path), ("line", on_line)):
        for split, (loss, acc) in results.items():
            arrays[f"{name}_{split}_loss"], arrays[f"{name}_{split}_err"] = loss, 1.0 - acc
            scalars.update(path_scalars(name, split, t, loss, acc))
    return arrays, scalars


TUNNEL = AnalysisSpec(
    name="tunnel",
    version=1,
    run=run_tunnel,
    copies=lambda p, f: 36.0 + 4 * p.pieces,
    params=TunnelParams,
    inputs=(Slot("start", help="one optimum (t = 0)"), Slot("end", help="the other optimum (t = 1)")),
    resources="any",
    description=(
        "A low-loss tunnel between two optima: the K-piece segment's interior points optimized within the "
        "hyperplanes normal to it (Fort & Jastrzebski 2019, §4.3, Fig. 3); method=path also optimizes the whole "
        "polygonal path.\n\nCheckpoints: the interior knots. Arrays: t, path_/line_<split>_loss and _err, knot_t, "
        "deviation_cosine (the knots' deviations from the line: two clusters in the paper), deviation_norm, "
        "knot_loss_history (K−1, steps), path_loss_history (method=path). Scalars: path_/line_loss_barrier, "
        "_error_barrier, _max_loss, _max_error (test_ "
        "variants for the test split), deviation_contrast (within minus across the best two-block split), "
        "deviation_split_t, max_deviation_norm, distance. align=weights|activations permutes the end to match the "
        "start first (Git Re-Basin)."
    ),
)
