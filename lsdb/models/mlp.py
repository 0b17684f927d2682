"""A fully connected network: the smallest model a loss landscape can be drawn for.

Multilayer perceptrons are the standard toy model of loss-landscape studies, e.g. the MNIST
MLPs of Goodfellow, Vinyals & Saxe 2015 ("Qualitatively characterizing neural network
optimization problems") and the fully connected nets of Li et al. 2018 (NeurIPS).
"""

from __future__ import annotations

from torch import nn

from lsdb.errors import BadInput
from lsdb.models.shapes import check_num_classes, flat_features

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}


def activation_layer(name: str, model: str) -> nn.Module:
    """A fresh activation module by name; `BadInput` lists the known names otherwise."""
    if name not in ACTIVATIONS:
        raise BadInput(f"model '{model}': unknown activation '{name}'; available: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    widths: tuple[int, ...] = (128, 128),
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Module:
    """MLP: flatten, then ``Linear -> activation [-> Dropout]`` per width, then a linear head.

    `widths` may be empty (a linear model). Goodfellow et al. 2015; Li et al. 2018.
    """
    in_features = flat_features(input_shape, "mlp")
    check_num_classes(num_classes, "mlp")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise BadInput(f"model 'mlp': widths must be positive ints, got {list(widths)}")
    if not 0.0 <= dropout < 1.0:
        raise BadInput(f"model 'mlp': dropout must be in [0, 1), got {dropout}")
    activation_layer(activation, "mlp")  # fail early even for a linear model
    layers: list[nn.Module] = [nn.Flatten()]
    for width in widths:
        layers += [nn.Linear(in_features, width), activation_layer(activation, "mlp")]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)
