"""Models and states for the alignment tests: zoo networks with non-trivial BatchNorm statistics,
and models the permutation tracer must refuse."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lsdb.models import build_model
from lsdb.plugin import factory

#: (model spec, input shape) of every zoo architecture the tests cover.
ZOO = (
    ("mlp:widths=[24,16]", (64,)),
    ("simple_cnn:channels=[8,12]", (1, 8, 8)),
    ("resnet:depth=20", (3, 16, 16)),
    ("resnet:depth=20,skip=false", (3, 16, 16)),  # 8x8 collapses deep plain nets at init
    ("vgg:width=0.125", (3, 32, 32)),
    ("vgg:width=0.125,batchnorm=false", (1, 8, 8)),
)


def zoo_model(spec: str, shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """A float64 zoo model in eval mode whose BatchNorm layers hold random (non-identity) statistics.

    Scales stay positive, so few units are dead (a network whose units all coincide on the data
    is one activation matching cannot tell apart, by construction).
    """
    model = build_model(spec, shape, 10, seed=seed).double().eval()
    gen = torch.Generator().manual_seed(seed + 100)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
            m.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
            m.bias.data.copy_(0.1 * torch.randn(n, generator=gen, dtype=torch.float64))
    return model


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.fx cannot trace ``gate``."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(features, 8)
        self.gate = Gate()
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.gate(self.body(x.flatten(1))))


class Gate(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return torch.relu(x)
        return x


class Concat(nn.Module):
    """Concatenates two branches: traceable, but no permutation rule covers ``torch.cat``."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(features, 4), nn.Linear(features, 4)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return self.head(torch.cat([self.a(x), self.b(x)], dim=1))


@factory
def data_dependent(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Model factory (by import path) of `DataDependent`."""
    return DataDependent(int(torch.tensor(input_shape).prod()), num_classes)
