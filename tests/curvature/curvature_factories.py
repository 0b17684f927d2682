"""Factories for the curvature tests: tiny models and data, reference Hessians, contexts and checkpoints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lsdb.analyses import AnalysisOutput, Context, InputCheckpoint, ResultView
from lsdb.data import load_dataset
from lsdb.models import build_model

MLP = {"name": "mlp", "kwargs": {"widths": [4]}}
DIGITS = {"name": "digits", "kwargs": {}}


def make_problem(seed: int = 0, n: int = 12, loss: str = "cross_entropy") -> tuple[nn.Module, Tensor, Tensor]:
    """A 3-5-4 tanh MLP (44 parameters) and n synthetic float64 examples."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (n,), generator=gen) if loss == "cross_entropy" else torch.randn(n, 4, generator=gen,
                                                                                         dtype=torch.float64)
    return model, x, y


def make_bn_model(seed: int = 0) -> nn.Module:
    """An MLP with a BatchNorm layer whose running statistics are not the defaults."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 4)).double()
    bn = model[1]
    bn.running_mean.copy_(torch.linspace(-0.5, 0.5, 5))
    bn.running_var.copy_(torch.linspace(0.5, 2.0, 5))
    return model.eval()


def reference_hessian(model: nn.Module, x: Tensor, y: Tensor, loss: str = "cross_entropy") -> tuple[Tensor, Tensor]:
    """(θ, H): the flat parameters and the dense Hessian of the mean loss, by `torch.func.hessian`."""
    model = model.eval()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for _, p in model.named_parameters()]
    theta = torch.cat([p.reshape(-1) for p in params])

    def f(t: Tensor) -> Tensor:
        chunks, offset = {}, 0
        for name, p in zip(names, params, strict=True):
            chunks[name] = t[offset:offset + p.numel()].reshape(p.shape)
            offset += p.numel()
        out = functional_call(model, chunks, (x,))
        return F.cross_entropy(out, y) if loss == "cross_entropy" else F.mse_loss(out, y)

    return theta, torch.func.hessian(f)(theta)


def make_context(model: dict[str, Any] = MLP, dataset: dict[str, Any] = DIGITS, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> Context:
    return Context(device=torch.device("cpu"), seed=seed, dtype=dtype, model_spec=model, dataset_spec=dataset,
                   loss="cross_entropy")


def make_state(model: dict[str, Any] = MLP, dataset: dict[str, Any] = DIGITS, seed: int = 0) -> dict[str, Tensor]:
    data = load_dataset(dataset)
    net = build_model(model, data.input_shape, data.num_classes, seed=seed)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def make_checkpoint(state: dict[str, Tensor], id: int = 1, run: str = "r") -> InputCheckpoint:
    frozen = {k: v.clone() for k, v in state.items()}
    return InputCheckpoint(id=id, run=run, project="p", step=0, epoch=None, label=None, tensor_digest=f"t{id}",
                           schema_digest="s", model_spec=None, dataset_spec=None, loss="cross_entropy",
                           _loader=lambda: {k: v.clone() for k, v in frozen.items()})


def digits_reference(state: dict[str, Tensor], subset: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(θ, H) of the mean cross-entropy on the same digits subset the analyses draw (float64)."""
    data = load_dataset(DIGITS)
    net = build_model(MLP, data.input_shape, data.num_classes).double()
    net.load_state_dict(state)
    x, y = data.split("train")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:subset].sort().values
    return reference_hessian(net, x[idx].double(), y[idx])


def as_view(output: AnalysisOutput, analysis: str, params: Any) -> ResultView:
    """A `ResultView` of an output, as the runner would store and reload it."""
    arrays = {k: np.asarray(v) for k, v in output.arrays.items()}
    return ResultView(id=1, analysis=analysis, params=asdict(params), scalars=dict(output.scalars), arrays=arrays,
                      inputs=[{"role": "center", "position": 0, "checkpoint": 1, "run": "r", "step": 0}],
                      attrs=dict(output.attrs))
