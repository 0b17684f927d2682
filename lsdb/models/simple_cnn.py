"""A small convolutional network for landscape experiments that must run on a CPU.

After the simple CNNs of Fort & Jastrzebski 2019, "Large Scale Structure of Neural Network
Loss Landscapes" (NeurIPS): a few 3x3 conv layers with ReLU and max-pooling, global average
pooling and a linear head. Small enough to train and scan in seconds on 8x8 digits.
"""

from __future__ import annotations

from torch import Tensor, nn

from lsdb.errors import BadInput
from lsdb.models.shapes import check_num_classes, image_shape


class SimpleCNN(nn.Module):
    """``[conv3x3 -> ReLU -> maxpool2 (while the map is at least 2x2)] * len(channels) -> GAP -> linear``."""

    def __init__(
        self, in_channels: int, height: int, width: int, num_classes: int, channels: tuple[int, ...], dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(in_channels, out, kernel_size=3, padding=1), nn.ReLU()]
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(out))


def simple_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: tuple[int, ...] = (16, 32, 32),
    dropout: float = 0.0,
) -> nn.Module:
    """Simple CNN (3 conv layers of 16, 32, 32 channels by default); Fort & Jastrzebski 2019.

    Max-pooling is applied after a conv only while the feature map is at least 2x2, so the
    same spec works on 1x8x8 digits and 3x32x32 CIFAR images.
    """
    c, h, w = image_shape(input_shape, "simple_cnn")
    check_num_classes(num_classes, "simple_cnn")
    if not channels or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in channels):
        raise BadInput(f"model 'simple_cnn': channels must be a non-empty list of positive ints, got {list(channels)}")
    if not 0.0 <= dropout < 1.0:
        raise BadInput(f"model 'simple_cnn': dropout must be in [0, 1), got {dropout}")
    return SimpleCNN(c, h, w, num_classes, tuple(channels), dropout)
