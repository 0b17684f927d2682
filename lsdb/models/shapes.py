"""Checks on the input shape and class count a model factory is handed.

Every zoo factory receives ``(input_shape, num_classes)`` from the dataset. These checks turn
a mismatch (a flat vector given to a conv net, a zero class count) into a one-line `BadInput`
instead of a shape error deep inside the first forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lsdb.errors import BadInput


def check_num_classes(num_classes: int, model: str) -> int:
    """The output dimension as an int, or `BadInput` when it is not positive."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise BadInput(f"model '{model}': num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def flat_features(input_shape: Sequence[int], model: str) -> int:
    """The number of input features once an example is flattened."""
    shape = _check_shape(input_shape, model)
    return math.prod(shape)


def image_shape(input_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    """``(C, H, W)`` for conv nets; a flat or otherwise non-image shape is `BadInput`."""
    shape = _check_shape(input_shape, model)
    if len(shape) != 3:
        raise BadInput(
            f"model '{model}' needs image-shaped input (channels, height, width), got shape {shape}; "
            "use an image dataset, e.g. digits:image=true"
        )
    return shape[0], shape[1], shape[2]


def _check_shape(input_shape: Sequence[int], model: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise BadInput(f"model '{model}': input_shape must be a tuple of ints, got {input_shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise BadInput(f"model '{model}': input_shape must be non-empty with positive sizes, got {shape}")
    return shape
