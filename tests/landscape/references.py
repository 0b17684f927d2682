"""Slow, obviously correct references the evaluator is tested against: one deepcopy per point."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from lsdb.landscape import ParamLayout


def reference_losses(
    model: nn.Module,
    points: Tensor,
    x: Tensor,
    y: Tensor,
    loss: str = "cross_entropy",
    train_x: Tensor | None = None,
    bn_batch_size: int = 128,
) -> tuple[Tensor, Tensor]:
    """Loss and accuracy at each point: ``load_state_dict`` + forward, with ``update_bn``-style recompute."""
    layout = ParamLayout.from_module(model, buffers=points.shape[1] > ParamLayout.from_module(model).numel)
    losses, accs = [], []
    for point in points:
        net = copy.deepcopy(model)
        net.load_state_dict(layout.unflatten(point.to(torch.float64)), strict=False)
        with torch.no_grad():
            if train_x is not None:
                for m in net.modules():
                    if isinstance(m, _BatchNorm):
                        m.reset_running_stats()
                        m.momentum = None
                net.train()
                for xb in train_x.split(bn_batch_size):
                    net(xb)
            net.eval()
            out = net(x)
            if loss == "cross_entropy":
                losses.append(F.cross_entropy(out, y).item())
                accs.append((out.argmax(1) == y).double().mean().item())
            else:
                losses.append(F.mse_loss(out, y).item())
                accs.append(float("nan"))
    return torch.tensor(losses, dtype=torch.float64), torch.tensor(accs, dtype=torch.float64)
