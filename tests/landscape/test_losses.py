"""Cross-entropy in float32 stays accurate at convergence (issue #14, §4).

A digits MLP is trained to a train loss of ~1e-4; the evaluator's float32 loss must agree with
float64 to ~1e-6 relative. The old formula (log Σ exp(z − m) + m − z_y, largest logit added first)
was 4e-4 relative off on such a model; it is kept here to show that the test would have caught it.
"""

from __future__ import annotations

import torch
from torch import nn

from lsdb.landscape.evaluator import Evaluator
from lsdb.landscape.losses import cross_entropy


def old_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    top = logits.max(dim=-1).values
    total = (logits - top.unsqueeze(-1)).exp() @ logits.new_ones(logits.shape[-1])
    picked = logits.gather(-1, y.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    return total.log().add(top).sub(picked)


def reference(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """−log softmax(z)_y = log1p(Σ_{j≠y} exp(z_j − z_y)) in float64, accurate for tiny losses too
    (``F.cross_entropy`` in float64 itself rounds log(1 + s) to 2e-16 absolute)."""
    d = (z - z.gather(-1, y.unsqueeze(-1))).exp()
    d.scatter_(-1, y.unsqueeze(-1), 0.0)
    return d.sum(-1).log1p()


def converged_mlp(x: torch.Tensor, y: torch.Tensor, target: float = 2e-4) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3000):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if loss.item() < target:
            break
        loss.backward()
        opt.step()
    return model


def test_float32_cross_entropy_is_accurate_at_convergence(digits) -> None:
    x, y = digits.train[0].float(), digits.train[1]
    model = converged_mlp(x, y)
    with torch.no_grad():
        logits32 = model(x)
        logits64 = model.double()(x.double())
    model.float()
    exact = torch.nn.functional.cross_entropy(logits64, y, reduction="none")
    mean = float(exact.mean())
    assert 1e-5 < mean < 3e-4, mean
    new, hits = cross_entropy(logits32.unsqueeze(0), y)
    old = old_cross_entropy(logits32.unsqueeze(0), y)
    # the float32 logits themselves differ from the float64 ones by rounding; compare against float64
    # computed from the *same* float32 logits to isolate the loss formula, and end to end
    same_logits = reference(logits32.double(), y)
    rel_new = abs(float(new.double().mean()) - float(same_logits.mean())) / float(same_logits.mean())
    rel_old = abs(float(old.double().mean()) - float(same_logits.mean())) / float(same_logits.mean())
    print(f"train loss {mean:.3g}: float32 loss relative error, old formula {rel_old:.2g}, new {rel_new:.2g}")
    assert rel_new < 2e-6
    assert rel_old > 20 * rel_new  # the test discriminates: the old formula fails it
    assert int(hits) == int((logits64.argmax(-1) == y).sum())
    small = same_logits < 1e-6  # tiny per-example losses are not rounded to 0 any more
    if small.any():
        assert (new[0][small] > 0).all()
        torch.testing.assert_close(new[0][small].double(), same_logits[small], rtol=1e-5, atol=1e-30)

    evaluated = Evaluator(model, x, y, dtype=torch.float32).at_points(
        torch.cat([p.detach().flatten() for p in model.parameters()]).unsqueeze(0))
    assert abs(float(evaluated.loss[0]) - mean) / mean < 1e-4  # end to end: logits rounding included
