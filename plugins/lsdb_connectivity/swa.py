"""`swa`: Stochastic Weight Averaging from a checkpoint, or the SWA average of given checkpoints.

Izmailov et al. 2018 ("Averaging Weights Leads to Wider Optima and Better Generalization", UAI)
continue SGD from a trained network with a cyclical learning rate (α1 → α2 linearly within
each cycle of c epochs, §3.1, eq. (1)) or a constant one, average the weights at the end of
each cycle (Algorithm 1), and recompute the BatchNorm statistics of the average with one pass
over the training data. ``schedule=constant`` anneals from `lr` to `swa_lr` over
`anneal_epochs` first, as ``torch.optim.swa_utils.SWALR`` does, then averages every `cycle`
epochs. Given `members` instead of a `start`, it averages those checkpoints in the order given
(buffers from the last, BatchNorm recomputed), exactly as ``AveragedModel`` + ``update_bn`` do.

The average is stored as a checkpoint ("swa average") and compared with the last SGD iterate
(from a start) or with the members (given members) on the chosen split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape.swa import SwaAverage, swa_cyclic_lr, swalr_lr, update_bn
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    accuracy_of,
    finite_scalars,
)
from lsdb_connectivity.curve import cast_like, has_batchnorm, optional_input, training_inputs
from lsdb_connectivity.fge import snapshot_state, train_with_schedule


@dataclass(frozen=True)
class SwaParams:
    """Parameters of `swa` (the training ones apply only when starting from a checkpoint)."""

    epochs: int = field(default=10, metadata={"help": "SGD epochs after the start checkpoint", "min": 1})
    lr: float = field(default=0.05, metadata={"help": "α1: the cycle's first rate (cyclic) or the rate annealed "
                                                      "from (constant)", "min": 0.0})
    swa_lr: float = field(default=0.01, metadata={"help": "α2: the cycle's last rate, or the constant SWA rate",
                                                  "min": 0.0})
    schedule: str = field(default="cyclic", metadata={"help": "cyclic (Izmailov eq. 1) or constant (SWALR)",
                                                      "choices": ("cyclic", "constant")})
    cycle: int = field(default=1, metadata={"help": "epochs per cycle: the weights are averaged at each cycle's "
                                                    "end", "min": 1})
    anneal_epochs: int = field(default=0, metadata={"help": "constant: epochs annealing lr to swa_lr (cos) before "
                                                            "averaging starts", "min": 0})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum", "min": 0.0, "max": 0.999})
    weight_decay: float = field(default=5e-4, metadata={"help": "SGD weight decay", "min": 0.0})
    batch_size: int = field(default=128, metadata={"help": "examples per minibatch (and per BatchNorm-update batch)",
                                                   "min": 1})
    split: str = field(default="test", metadata={"help": "split the average is judged on", "choices": SPLITS})

    def averages_after(self, epoch: int) -> bool:
        """Whether the weights after `epoch` (1-based) completed epochs join the average."""
        if self.schedule == "cyclic":
            return epoch % self.cycle == 0
        return epoch > self.anneal_epochs and (epoch - self.anneal_epochs) % self.cycle == 0


def _learning_rate(params: SwaParams, n_batches: int) -> Callable[[int], float]:
    if params.schedule == "cyclic":
        return lambda step: swa_cyclic_lr(step, params.cycle * n_batches, params.lr, params.swa_lr)
    return lambda step: swalr_lr(step, params.anneal_epochs * n_batches, params.lr, params.swa_lr)


def _train_and_average(ctx: Context, start: InputCheckpoint, params: SwaParams
                       ) -> tuple[nn.Module, SwaAverage, dict[str, Tensor], dict[str, np.ndarray]]:
    """(model, the running average, the last SGD iterate, training arrays) from SGD after `start`."""
    if not any(params.averages_after(e) for e in range(1, params.epochs + 1)):
        raise BadInput(f"swa: no epoch of {params.epochs} ends a cycle after the anneal; raise -p epochs")
    model = ctx.build_model(start.state())
    n_batches = max(1, math.ceil(len(ctx.data("train")[0]) / params.batch_size))
    lr = _learning_rate(params, n_batches)
    swa = SwaAverage()
    averaged: list[int] = []

    def on_epoch(epoch: int, net: nn.Module) -> None:
        if params.averages_after(epoch):
            swa.update(net)
            averaged.append(epoch)

    losses = train_with_schedule(ctx, model, "swa", epochs=params.epochs, lr=params.lr, momentum=params.momentum,
                                 weight_decay=params.weight_decay, batch_size=params.batch_size, schedule=lr,
                                 on_epoch=on_epoch)
    arrays = {"epoch_train_loss": np.asarray(losses), "averaged_epoch": np.asarray(averaged),
              "lr": np.array([lr(s) for s in range(params.epochs * n_batches)])}
    return model, swa, snapshot_state(model), arrays


def run_swa(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: SwaParams) -> AnalysisOutput:
    """SWA (Izmailov et al. 2018, Algorithm 1): train and average, or average the given members; then update BN."""
    start = optional_input(inputs, "start")
    members = list(inputs.get("members", ()))
    if (start is None) == (not members):
        raise BadInput("swa takes either start=ID (train, then average) or members=ID ... (average them), not both")
    if start is None and len(members) < 2:
        raise BadInput(f"swa needs at least 2 members to average, got {len(members)}")
    ctx.progress(0.0, "loading checkpoints")
    first = start or members[0]
    like = first.state()
    arrays: dict[str, np.ndarray] = {}
    references: list[dict[str, Tensor]]
    if start is not None:
        model, swa, last, arrays = _train_and_average(ctx, start, params)
        references = [last]
    else:
        model = ctx.build_model(like)
        names = [n for n, _ in model.named_parameters()]
        swa = SwaAverage()
        references = []
        for c in members:
            state = {k: v.to(ctx.device, ctx.dtype) if v.is_floating_point() else v.to(ctx.device)
                     for k, v in c.state().items()}
            swa.update(state, names)
            references.append(state)
    ctx.progress(0.85, "updating BatchNorm statistics")
    x = training_inputs(ctx, model, "swa")
    net = ctx.build_model()  # in the context's dtype first, so the average keeps its precision when loaded
    net.load_state_dict(swa.state_dict())
    if has_batchnorm(net):
        update_bn(net, x.split(params.batch_size))
    average = cast_like(snapshot_state(net), like)  # evaluate what is stored, in the inputs' dtype

    layout = ctx.layout(net)
    points = torch.stack([layout.flatten(s, dtype=ctx.dtype, device=ctx.device) for s in [average, *references]])
    scalars: dict[str, float] = {"n_averaged": float(swa.n_averaged)}
    for split in [s for s in dict.fromkeys((params.split, "train")) if len(ctx.data(s)[0])]:
        result = ctx.evaluator(net, split, "eval").at_points(points, should_cancel=ctx.should_cancel)
        loss = result.loss.double().numpy()
        error = 1.0 - accuracy_of(result, loss.shape)
        scalars[f"swa_{split}_loss"] = float(loss[0])
        ref = "sgd" if start is not None else "mean_member"
        scalars[f"{ref}_{split}_loss"] = float(loss[1:].mean())
        if ctx.loss == "cross_entropy":
            scalars[f"swa_{split}_error"] = float(error[0])
            scalars[f"{ref}_{split}_error"] = float(error[1:].mean())
            arrays[f"reference_{split}_error"] = error[1:]
        arrays[f"reference_{split}_loss"] = loss[1:]
    ctx.progress(1.0, "done")
    checkpoint = NewCheckpointOutput(tensors=average, label="swa average")
    attrs = {"mode": "train" if start is not None else "members", "schedule": params.schedule,
             "inputs": first.name if start is not None else ", ".join(c.name for c in members)}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=[checkpoint], attrs=attrs)


SWA = AnalysisSpec(
    name="swa",
    version=1,
    run=run_swa,
    copies=lambda p, f: 20.0 + f.n_inputs,
    params=SwaParams,
    inputs=(
        Slot("start", min=0, max=1, help="train from this checkpoint and average along the way"),
        Slot("members", min=0, max=None, help="or: average these checkpoints (in this order)"),
    ),
    resources="any",
    description=(
        "Stochastic Weight Averaging (Izmailov et al. 2018): SGD with a cyclical or constant learning rate from a "
        "checkpoint, averaging at each cycle's end, or the average of given checkpoints; BatchNorm recomputed, the "
        "average stored as a checkpoint.\n\nArrays: reference_{split}_{loss,error} (the last SGD iterate, or each "
        "member), epoch_train_loss, averaged_epoch, lr. Scalars: swa_{split}_{loss,error}, sgd_... or "
        "mean_member_{split}_{loss,error}, n_averaged."
    ),
)
