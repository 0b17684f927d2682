"""VGG-9, the plain (shortcut-free) CIFAR network of Li et al. 2018's batch-size study.

Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets" (NeurIPS), §4 and §6 use a
9-layer VGG (Simonyan & Zisserman 2015) with batch normalization. The layout follows their
code: seven 3x3 conv layers ``64, 64, M, 128, 128, M, 256, 256, 256, M`` (each conv followed
by BatchNorm and ReLU, ``M`` a 2x2 max-pool), then ``Linear(256*h*w, 256) -> BN -> ReLU`` and
a linear classifier: 7 conv + 2 FC layers. With ``batchnorm=true`` and ``width=1`` the module
names match theirs (``features.N``, ``fc.N``, ``classifier``), so their state dicts load.
"""

from __future__ import annotations

from torch import Tensor, nn

from lsdb.errors import BadInput
from lsdb.models.shapes import check_num_classes, image_shape

LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")


class VGG(nn.Module):
    """Conv features, one hidden fully connected layer, and a linear classifier."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        layout: tuple[int | str, ...],
        batchnorm: bool,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for item in layout:
            if item == "M":
                if min(height, width) >= 2:  # skip pools a tiny image has no room for
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                    height, width = -(-height // 2), -(-width // 2)
                continue
            assert isinstance(item, int)
            layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU())
            in_channels = item
        self.features = nn.Sequential(*layers)
        hidden = in_channels
        fc: list[nn.Module] = [nn.Linear(in_channels * height * width, hidden, bias=True)]
        if batchnorm:
            fc.append(nn.BatchNorm1d(hidden))
        fc.append(nn.ReLU())
        self.fc = nn.Sequential(*fc)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.fc(self.features(x).flatten(1)))


def vgg(
    input_shape: tuple[int, ...],
    num_classes: int,
    batchnorm: bool = True,
    width: float = 1.0,
) -> nn.Module:
    """VGG-9 of Li et al. 2018 (7 conv + 2 FC layers); `width` scales every layer's channels.

    ``width=0.125`` (8 to 32 channels) is small enough for CPU tests. A max-pool is skipped
    when the feature map is already 1 pixel, so 1x8x8 digits work as well as 3x32x32.
    """
    c, h, w = image_shape(input_shape, "vgg")
    check_num_classes(num_classes, "vgg")
    if not width > 0:
        raise BadInput(f"model 'vgg': width must be positive, got {width}")
    layout = tuple(item if item == "M" else max(1, round(int(item) * width)) for item in LAYOUT)
    return VGG(c, h, w, num_classes, layout, batchnorm)
