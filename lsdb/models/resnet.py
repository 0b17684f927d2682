"""CIFAR ResNets with and without shortcut connections, and their wide variants.

He et al. 2016, "Deep Residual Learning for Image Recognition" (CVPR), §4.2: a 3x3 stem conv,
three stages of ``n`` basic blocks with 16, 32, 64 filters (stride 2 entering stages 2 and
3), global average pooling and a linear head; depth ``6n + 2``. ``skip=False`` is Li et al.
2018's "ResNet-noshort" (NeurIPS, §5), the same network with every shortcut removed, whose
chaotic landscape is the paper's headline figure. ``k`` widens every stage as in Li et al.'s
Wide-ResNet-56-k (Zagoruyko & Komodakis 2016). Module names follow Li et al.'s code
(``conv1, bn1, layer1..3, linear``; blocks ``conv1, bn1, conv2, bn2, shortcut``), so their
published state dicts load unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lsdb.errors import BadInput
from lsdb.models.shapes import check_num_classes, image_shape


class Shortcut(nn.Sequential):
    """The shortcut of a residual block: identity when empty, else a 1x1 conv + BatchNorm projection.

    He et al.'s option B: a projection only where the block changes width or stride.
    """


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers; with a `Shortcut`, the block's input is added before the last ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, skip: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: Shortcut | None = None
        if skip:
            self.shortcut = Shortcut()
            if stride != 1 or in_planes != planes:
                self.shortcut = Shortcut(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """CIFAR ResNet; `num_shortcuts` counts the residual connections (3n, or 0 without skips)."""

    def __init__(self, in_channels: int, num_classes: int, n: int, skip: bool, k: int) -> None:
        super().__init__()
        widths = (16 * k, 32 * k, 64 * k)
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        planes = widths[0]
        stages = []
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(planes, width, stride, skip))
                planes = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(widths[2], num_classes)

    @property
    def num_shortcuts(self) -> int:
        return sum(isinstance(m, Shortcut) for m in self.modules())

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # = Li et al.'s avg_pool2d(out, 8) on 32x32 input
        return self.linear(out)


def resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    depth: int = 20,
    skip: bool = True,
    k: int = 1,
) -> nn.Module:
    """CIFAR ResNet-`depth` (He et al. 2016); ``skip=false`` is ResNet-noshort, ``k`` widens (Li et al. 2018).

    `depth` must be ``6n + 2`` (20, 32, 44, 56, 110, ...). Any image size works: stages 2
    and 3 halve the map (rounding up) and the head pools globally.
    """
    c, _, _ = image_shape(input_shape, "resnet")
    check_num_classes(num_classes, "resnet")
    if depth < 8 or (depth - 2) % 6:
        raise BadInput(f"model 'resnet': depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}")
    if k < 1:
        raise BadInput(f"model 'resnet': width multiplier k must be a positive int, got {k}")
    return ResNet(c, num_classes, (depth - 2) // 6, skip, k)
