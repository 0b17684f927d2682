"""`fge`: Fast Geometric Ensembling (Garipov et al. 2018), and snapshot ensembles (Huang et al. 2017).

FGE (Garipov et al. 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", §5)
starts from a trained network and runs SGD with a cyclical learning rate, α1 → α2 → α1 linearly
over a cycle of c epochs, storing a snapshot each time the rate reaches its minimum α2, in the
middle of a cycle — hence c must be even, so that the snapshot falls on an epoch boundary. The
snapshots, a short distance apart along low-loss paths, are diverse enough that the mean of
their softmax outputs beats the single network. ``schedule=sse`` runs the snapshot ensembles of
Huang et al. 2017 ("Snapshot Ensembles: Train 1, get M for free", ICLR, §3, eq. (2)) instead: a
cosine from α1 towards 0 restarted every c epochs, a snapshot at the end of each cycle, usually
from an untrained network. The learning rates are `lsdb.landscape.swa.fge_cyclic_lr` and
`snapshot_cosine_lr`; the training loop is `lsdb.landscape.training.train`.

The run stops at the last snapshot: FGE trains c/2 + (K − 1)·c epochs for K snapshots, SSE K·c.
Each snapshot is stored as a checkpoint ("fge snapshot k") and the ensembles of the first k
snapshots are evaluated as they grow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape.ensembles import ensemble_metrics
from lsdb.landscape.swa import fge_cyclic_lr, snapshot_cosine_lr
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    finite_scalars,
    single,
)
from lsdb_connectivity.curve import cast_like, training_inputs
from lsdb_connectivity.ensemble import ensemble_output, member_probabilities, require_classification

EpochHook = Callable[[int, nn.Module], None]


def train_with_schedule(
    ctx: Context, model: nn.Module, analysis: str, *, epochs: int, lr: float, momentum: float, weight_decay: float,
    batch_size: int, schedule: Callable[[int], float], on_epoch: EpochHook, progress_to: float = 0.8,
) -> list[float]:
    """SGD on the training split with a per-step learning rate; `on_epoch(epoch, model)` after each epoch.

    Returns the training loss after each epoch. Divergence is a one-line `BadInput`.
    """
    from lsdb.landscape.training import DivergedError, TrainConfig, train

    x, y = ctx.data("train")
    training_inputs(ctx, model, analysis, needed=True)
    config = TrainConfig(optimizer="sgd", lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size,
                         epochs=epochs, seed=ctx.seed, save_every=0, loss=ctx.loss, lr_schedule=schedule,
                         save_initial=False)
    losses: list[float] = []

    def epoch_done(metrics: dict[str, float], epoch: int, step: int) -> None:
        losses.append(metrics.get("train_loss", math.nan))
        on_epoch(epoch, model)
        ctx.progress(progress_to * epoch / epochs, f"epoch {epoch}/{epochs}")

    try:
        summary = train(model, (x, y), None, config, ctx.device, on_epoch=epoch_done, should_stop=ctx.should_cancel)
    except DivergedError as exc:
        raise BadInput(f"{analysis}: training diverged ({exc}); lower the learning rate") from None
    except ValueError as exc:
        raise BadInput(f"{analysis}: {exc}") from None
    if summary.stopped:
        ctx.check_cancelled()
    return losses


def snapshot_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class FgeParams:
    """Parameters of `fge`."""

    snapshots: int = field(default=4, metadata={"help": "ensemble members to collect (one per cycle)", "min": 2})
    cycle: int = field(default=4, metadata={"help": "cycle length in epochs (even for fge: the snapshot is "
                                                    "taken mid-cycle)"})
    lr_max: float = field(default=5e-2, metadata={"help": "α1, the largest learning rate of a cycle", "min": 0.0})
    lr_min: float = field(default=5e-4, metadata={"help": "α2, the smallest (fge only)", "min": 0.0})
    schedule: str = field(default="fge", metadata={"help": "fge: α1→α2→α1 (Garipov §5); sse: cosine restarts "
                                                           "(Huang et al. 2017)", "choices": ("fge", "sse")})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum", "min": 0.0, "max": 0.999})
    weight_decay: float = field(default=5e-4, metadata={"help": "SGD weight decay", "min": 0.0})
    batch_size: int = field(default=128, metadata={"help": "examples per minibatch", "min": 1})
    split: str = field(default="test", metadata={"help": "split the ensemble is judged on", "choices": SPLITS})
    bins: int = field(default=15, metadata={"help": "equal-width confidence bins of the ECE", "min": 1})

    def __post_init__(self) -> None:
        if self.schedule == "fge" and (self.cycle < 2 or self.cycle % 2):
            raise ValueError(f"cycle must be a positive even number of epochs (FGE snapshots mid-cycle), "
                             f"got {self.cycle}")
        if self.cycle < 1:
            raise ValueError(f"cycle must be a positive number of epochs, got {self.cycle}")
        if self.snapshots < 2:
            raise ValueError(f"snapshots must be at least 2 (an ensemble of one is its member), got {self.snapshots}")

    @property
    def epochs(self) -> int:
        """The training budget: up to the last snapshot."""
        if self.schedule == "fge":
            return self.cycle // 2 + (self.snapshots - 1) * self.cycle
        return self.snapshots * self.cycle

    def is_snapshot(self, epoch: int) -> bool:
        """Whether a snapshot is taken after `epoch` (1-based) completed epochs."""
        offset = self.cycle // 2 if self.schedule == "fge" else self.cycle
        return epoch >= offset and (epoch - offset) % self.cycle == 0

    def learning_rate(self, n_batches: int) -> Callable[[int], float]:
        steps = self.cycle * n_batches
        if self.schedule == "fge":
            return lambda step: fge_cyclic_lr(step, steps, self.lr_max, self.lr_min)
        return lambda step: snapshot_cosine_lr(step, steps, self.lr_max)


def run_fge(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: FgeParams) -> AnalysisOutput:
    """Collect snapshots with a cyclical learning rate and judge them as a growing ensemble (Garipov et al. §5)."""
    start = single(inputs, "start")
    require_classification(ctx, "fge")
    ctx.progress(0.0, "loading the checkpoint")
    start_state = start.state()
    model = ctx.build_model(start_state)
    n_batches = math.ceil(len(ctx.data("train")[0]) / params.batch_size)
    lr = params.learning_rate(max(n_batches, 1))
    snapshots: list[dict[str, Tensor]] = []
    snapshot_epochs: list[int] = []

    def on_epoch(epoch: int, net: nn.Module) -> None:
        if params.is_snapshot(epoch):
            snapshots.append(snapshot_state(net))
            snapshot_epochs.append(epoch)

    losses = train_with_schedule(ctx, model, "fge", epochs=params.epochs, lr=params.lr_max, momentum=params.momentum,
                                 weight_decay=params.weight_decay, batch_size=params.batch_size, schedule=lr,
                                 on_epoch=on_epoch)
    stored = [cast_like(s, start_state) for s in snapshots]  # evaluate what is stored, in the inputs' dtype
    layout = ctx.layout(model)
    points = torch.stack([layout.flatten(s, dtype=ctx.dtype, device=ctx.device) for s in [start_state, *stored]])
    probs, y = member_probabilities(ctx, model, points, params.split, "eval", 0.8, 0.98)
    arrays, scalars = ensemble_output(probs[1:], y, params.bins, per_size_scalars=True)
    first = ensemble_metrics(probs[0], y, params.bins)
    scalars.update({f"start_{params.split}_error": first.error, f"start_{params.split}_nll": first.nll,
                    "epochs": float(params.epochs)})
    arrays.update({"epoch_train_loss": np.asarray(losses), "snapshot_epoch": np.asarray(snapshot_epochs),
                   "lr": np.array([lr(s) for s in range(params.epochs * n_batches)])})
    kind = "fge" if params.schedule == "fge" else "sse"
    checkpoints = [NewCheckpointOutput(tensors=s, label=f"{kind} snapshot {k + 1}") for k, s in enumerate(stored)]
    ctx.progress(1.0, "done")
    attrs = {"start": start.name, "schedule": params.schedule, "steps_per_epoch": n_batches}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=checkpoints, attrs=attrs)


FGE = AnalysisSpec(
    name="fge",
    version=1,
    run=run_fge,
    copies=lambda p, f: 16.0 + p.snapshots,
    params=FgeParams,
    inputs=(Slot("start", help="the trained network FGE starts from (SSE: usually an untrained one)"),),
    resources="any",
    description=(
        "Fast Geometric Ensembling (Garipov et al. 2018, §5) or snapshot ensembles (Huang et al. 2017): cyclical-lr "
        "snapshots stored as checkpoints and judged as a growing ensemble.\n\nArrays: member_{error,nll,ece}, "
        "ensemble_{error,nll,ece} by size, disagreement, reliability_*, epoch_train_loss, snapshot_epoch, lr (per "
        "step). Scalars: ensemble_error/nll/ece, ensemble_error_k and ensemble_nll_k for each size k, "
        "member_error_k, mean_member_error, start_{split}_error/nll, epochs, mean_disagreement."
    ),
)
