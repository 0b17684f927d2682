"""Per-example losses at many points, folded into running totals: the evaluator's bookkeeping.

Cross-entropy is the mean over examples of −log softmax(z)_y (computed as log1p + margin, accurate
in float32 at convergence: `cross_entropy`); MSE is the mean over examples of
each example's mean squared error over its outputs, i.e. the mean over all elements, as
``nn.MSELoss()``. Token cross-entropy (language models: outputs (n, T, V), labels (n, T) with
``IGNORE_INDEX`` at padding and unmasked positions) is the token-level mean: the sum of −log
softmax(z)_y over every scored token divided by the number of scored tokens, as transformers'
own ``loss`` for one batch; its accuracy is the fraction of scored tokens predicted.
Sums are kept in float64 on the evaluation device and copied to the CPU
once, at the end. With a random subset of n of the N examples, the standard error of the loss
estimate is s / √n · √(1 − n/N) (s the sample standard deviation of the per-example losses;
the last factor is the finite-population correction for sampling without replacement).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Label of a token that is not scored (padding; unmasked positions of masked LM), as in PyTorch and transformers.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Evaluation:
    """Results at K points, on the CPU. `loss`, `accuracy`, `stderr`: float64 (K,).

    `accuracy` is None for ``mse``; `stderr` (of the loss) only with a data subset;
    `outputs` (K, N, *out) logits or softmax probabilities when asked for.
    """

    loss: Tensor
    accuracy: Tensor | None
    n_examples: int
    stderr: Tensor | None = None
    outputs: Tensor | None = None
    strategy: str = "per_point"
    reused_first_layer: bool = False
    fused: bool = False  # per-point passes ran `lsdb.landscape.fusion`'s rewritten model
    graphed: bool = False  # batched passes were replayed as CUDA graphs (`lsdb.landscape.static_passes`)


class LossTotals:
    """Running sums of per-example losses (squares, with a subset; correct predictions) for K points."""

    def __init__(self, n_points: int, y: Tensor, loss: str, outputs: str | None, population: int | None,
                 dtype: torch.dtype) -> None:
        self.y, self.kind, self.keep, self.population, self.dtype = y, loss, outputs, population, dtype
        self.loss = torch.zeros(n_points, dtype=torch.float64, device=y.device)
        self.hits = torch.zeros(n_points, dtype=torch.int64, device=y.device)
        self.square = torch.zeros(n_points, dtype=torch.float64, device=y.device) if population else None
        #: token losses are averaged over scored tokens, not examples
        self.n_terms = int((y != IGNORE_INDEX).sum()) if loss == "token_cross_entropy" else len(y)
        self.outputs: Tensor | None = None
        self.n_points = n_points

    def add(self, k0: int, k1: int, rows: slice, out: Tensor) -> None:
        """Fold in outputs (B, n, *out) of points k0:k1 on examples `rows`.

        Under autocast only the forward pass is lowered: the loss is computed in the evaluator's dtype
        (`cross_entropy`'s class sum is a matrix product, which autocast would run in bf16)."""
        with torch.autocast(out.device.type, enabled=False):
            self._fold(k0, k1, rows, out)

    def _fold(self, k0: int, k1: int, rows: slice, out: Tensor) -> None:
        y = self.y[rows]
        if out.dtype != self.dtype:
            out = out.to(self.dtype)
        if self.kind == "cross_entropy":
            per_example, hits = cross_entropy(out, y)
            self.hits[k0:k1] += hits
        elif self.kind == "token_cross_entropy":
            per_example, hits = token_cross_entropy(out, y)
            self.hits[k0:k1] += hits
        else:
            per_example = (out - y).square().flatten(2).mean(dim=-1)
        self.loss[k0:k1] += per_example.sum(dim=-1, dtype=torch.float64)
        if self.square is not None:
            self.square[k0:k1] += per_example.double().square().sum(dim=-1)
        if self.keep is not None:
            if self.outputs is None:
                self.outputs = torch.empty(self.n_points, len(self.y), *out.shape[2:], dtype=out.dtype)
            kept = out.softmax(dim=-1) if self.keep == "probs" else out
            self.outputs[k0:k1, rows] = kept.cpu()

    def result(self, strategy: str, reused: bool, fused: bool = False, graphed: bool = False) -> Evaluation:
        n, terms = len(self.y), max(self.n_terms, 1)
        mean = (self.loss / terms).cpu()
        accuracy = (self.hits.double() / terms).cpu() if self.kind != "mse" else None
        stderr = None
        if self.square is not None and self.population and n > 1:
            # per-example terms: token sums scaled to the token mean (a ratio estimate for token losses)
            scale = n / terms
            var = ((self.square.cpu() * scale**2 - n * mean.square()) / (n - 1)).clamp_min(0)
            stderr = (var / n * (1 - n / self.population)).sqrt()
        return Evaluation(mean, accuracy, n, stderr, self.outputs, strategy, reused, fused, graphed)


def cross_entropy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example −log softmax(z)_y (B, n) and the number of correct arg-maxes (B,), for logits (B, n, C).

    The same value as ``F.cross_entropy(reduction="none")``, computed so that it stays accurate in
    float32 at convergence: with m = max z and s = Σ_{j ≠ argmax} exp(z_j − m),
    −log softmax(z)_y = log1p(s) + (m − z_y). Both terms are computed without cancellation: (m − z_y)
    is exactly 0 when the prediction is right, and log1p(s) keeps its relative accuracy when s is
    tiny. The textbook ``log Σ exp(z − m) + m − z_y`` (and ``log_softmax``) rounds log(1 + s) to
    the float32 spacing of 1 (or adds the largest logit first and subtracts the true one), which
    makes each converged example's loss wrong by up to 6e-8 in absolute terms, i.e. by 100 % below
    ~1e-7 (tests/landscape/test_losses.py). The class sum is a matrix-vector product: on a CPU,
    ``log_softmax`` and ``argmax`` over a short last dimension cost more than the rest of a small
    MLP's loss evaluation.
    """
    top, predicted = logits.max(dim=-1)
    e = (logits - top.unsqueeze(-1)).exp_()
    e.scatter_(-1, predicted.unsqueeze(-1), 0.0)  # the arg-max's own term, exp(0) = 1, is the 1 in log1p
    rest = e @ logits.new_ones(logits.shape[-1])
    picked = logits.gather(-1, y.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    return rest.log1p_().add_(top.sub_(picked)), (predicted == y).sum(dim=-1)


def softmax_cross_entropy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """softmax(z) (N, C) and per-example −log softmax(z)_y (N,) for logits (N, C) and labels (N,), from one
    ``exp``: the loss computed as in `cross_entropy` (accurate in float32 at convergence), the
    probabilities as exp(z − m) / (1 + s). What a Hessian-vector product needs at a point."""
    top, predicted = logits.max(dim=1, keepdim=True)
    e = (logits - top).exp_()
    e.scatter_(1, predicted, 0.0)
    rest = e.sum(1, keepdim=True)
    total = rest + 1
    probs = e.div_(total).scatter_(1, predicted, total.reciprocal())
    loss = rest.log1p_().add_(top.sub_(logits.gather(1, y.unsqueeze(1))))
    return probs, loss.squeeze(1)


def token_cross_entropy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example sums over scored tokens of −log softmax(z)_y (B, n), and correct tokens (B,).

    `logits` (B, n, T, V), `y` (n, T) with `IGNORE_INDEX` for tokens that are not scored.
    """
    keep = y != IGNORE_INDEX
    target = torch.where(keep, y, torch.zeros_like(y))
    logp = logits.float().log_softmax(dim=-1) if logits.dtype in (torch.float16, torch.bfloat16) else \
        logits.log_softmax(dim=-1)
    picked = logp.gather(-1, target.expand(logits.shape[0], *target.shape).unsqueeze(-1)).squeeze(-1)
    per_token = -picked * keep
    hits = ((logits.argmax(dim=-1) == target) & keep).flatten(1).sum(dim=-1)
    return per_token.flatten(2).sum(dim=-1), hits
