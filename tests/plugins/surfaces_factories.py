"""Factories for the `lsdb_surfaces` tests: contexts, hand-made input checkpoints, a short
trained trajectory on digits, and independent reference losses (plain forward passes)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsdb.analyses import AnalysisOutput, Context, InputCheckpoint, ResultView
from lsdb.data import load_dataset
from lsdb.models import build_model
from lsdb.plugin import factory

MLP = {"name": "mlp", "kwargs": {"widths": [16]}}
LINEAR = {"name": "mlp", "kwargs": {"widths": []}}
BN_MLP = {"name": "tests.plugins.surfaces_factories:bn_mlp", "kwargs": {}}
DIGITS = {"name": "digits", "kwargs": {}}
TEACHER = {"name": "synthetic", "kwargs": {"kind": "teacher", "n": 120, "dim": 5, "seed": 3}}

State = dict[str, Tensor]


@factory
def bn_mlp(input_shape: tuple[int, ...], num_classes: int, width: int = 8) -> nn.Module:
    """A small MLP with a BatchNorm layer (a model factory given by import path)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(np.prod(input_shape)), width),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.Linear(width, num_classes),
    )


def make_context(
    model: dict[str, Any] = MLP,
    dataset: dict[str, Any] = DIGITS,
    loss: str = "cross_entropy",
    seed: int = 0,
    **kwargs: Any,
) -> Context:
    return Context(
        device=torch.device("cpu"),
        seed=seed,
        dtype=torch.float64,
        model_spec=model,
        dataset_spec=dataset,
        loss=loss,
        **kwargs,
    )


def make_checkpoint(state: State, step: int | None = None, run: str = "r", id: int = 1) -> InputCheckpoint:
    frozen = {k: v.clone() for k, v in state.items()}
    return InputCheckpoint(
        id=id,
        run=run,
        project="p",
        step=step,
        epoch=None,
        label=None,
        tensor_digest=f"t{id}",
        schema_digest="s",
        model_spec=None,
        dataset_spec=None,
        loss="cross_entropy",
        _loader=lambda: {k: v.clone() for k, v in frozen.items()},
    )


def make_state(model: dict[str, Any] = MLP, dataset: dict[str, Any] = DIGITS, seed: int = 0) -> State:
    data = load_dataset(dataset)
    net = build_model(model, data.input_shape, data.num_classes, seed=seed)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@functools.cache
def digits_trajectory(n_steps: int = 24, every: int = 3, lr: float = 0.5) -> tuple[tuple[int, State], ...]:
    """(step, float32 state) of full-batch gradient descent on digits for the 16-unit MLP, every `every` steps."""
    data = load_dataset(DIGITS)
    net = build_model(MLP, data.input_shape, data.num_classes, seed=0)
    x, y = data.train
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    out = []
    for step in range(n_steps + 1):
        if step % every == 0:
            out.append((step, {k: v.detach().clone() for k, v in net.state_dict().items()}))
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return tuple(out)


def trajectory_checkpoints(**kwargs: Any) -> list[InputCheckpoint]:
    states = digits_trajectory(**kwargs)
    return [make_checkpoint(s, step=step, run="traj", id=i + 1) for i, (step, s) in enumerate(states)]


def reference_loss(
    state: State,
    split: str = "train",
    model: dict[str, Any] = MLP,
    dataset: dict[str, Any] = DIGITS,
    loss: str = "cross_entropy",
) -> tuple[float, float | None]:
    """(loss, accuracy) by a plain float64 forward pass of a freshly built model (independent of the evaluator)."""
    data = load_dataset(dataset)
    net = build_model(model, data.input_shape, data.num_classes).double().eval()
    net.load_state_dict(state)  # copied into float64 tensors: a float64 state keeps its precision
    x, y = data.split(split)
    with torch.no_grad():
        out = net(x.double())
    if loss == "mse":
        return float(F.mse_loss(out, y.double())), None
    return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).double().mean())


def flat_parameters(state: State, model: dict[str, Any] = MLP, dataset: dict[str, Any] = DIGITS) -> np.ndarray:
    """The parameters of `state` in ``named_parameters()`` order, as one float64 NumPy vector."""
    data = load_dataset(dataset)
    names = [n for n, _ in build_model(model, data.input_shape, data.num_classes).named_parameters()]
    return np.concatenate([state[n].double().numpy().ravel() for n in names])


def as_view(
    output: AnalysisOutput, analysis: str, params: Any, inputs: list[dict[str, Any]] | None = None
) -> ResultView:
    """A `ResultView` of an output, as the runner would store and reload it."""
    from dataclasses import asdict

    arrays = {k: np.asarray(v) for k, v in output.arrays.items()}
    return ResultView(
        id=1,
        analysis=analysis,
        params=asdict(params),
        scalars=dict(output.scalars),
        arrays=arrays,
        inputs=inputs or [],
        attrs=dict(output.attrs),
    )
