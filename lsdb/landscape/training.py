"""A deterministic, resumable training loop over in-memory tensors: how lsdb makes trajectories.

`train` runs minibatch SGD or Adam on a model whose data already sits in memory, evaluates
the full train and test splits once per epoch, and hands out snapshots at save points. It is
pure torch (docs/architecture.md: the math layer): no catalog, no files; the caller decides what a snapshot becomes.

Determinism: the order of examples in epoch ``e`` is a permutation drawn from a generator
seeded with a hash of ``(seed, e)``, so it does not depend on what ran before. Layers that draw
random numbers while training (dropout) use the global generator, seeded from `seed` inside a
`torch.random.fork_rng` block (the caller's RNG is untouched) and saved in every snapshot.
A run resumed from a `TrainState` therefore takes exactly the steps it would have taken
without the interruption: on a CPU the final weights are bitwise identical.

The inner loop does only what a hand-written loop does, plus appending the detached loss to a
list; losses are checked for NaN/inf in one batch at each epoch end, save point, progress
report and stop, which costs one device synchronization instead of one per step.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPTIMIZERS = ("sgd", "adam")
SAVE_UNITS = ("steps", "epochs")
LOSSES = ("cross_entropy", "mse")
MAX_PENDING_LOSSES = 1024
"""Losses kept unchecked at most (long epochs without progress reports): one sync per this many steps."""

HYPERPARAMETERS = ("lr", "batch_size", "optimizer", "momentum", "weight_decay", "epochs", "seed", "random_label_weight",
                   "schedule")
"""The `TrainConfig` fields that define a trajectory (recorded as run params, fixed when resuming)."""

EpochCallback = Callable[[dict[str, float], int, int], None]
"""``on_epoch(metrics, epoch, step)``: metrics after `epoch` completed epochs (0: at initialization)."""
StepCallback = Callable[[int, float, float], None]
"""``on_step(step, epochs_done, loss)``: every `log_every` steps; `loss` is the mean since the last call."""


class DivergedError(Exception):
    """The training loss became NaN or infinite at optimizer step `step` (1-based)."""

    def __init__(self, step: int, loss: float) -> None:
        self.step = step
        self.loss = loss
        super().__init__(f"loss is {'nan' if math.isnan(loss) else loss} at step {step}")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    `save_every` counts `save_unit`s (``"steps"`` or ``"epochs"``) between snapshots; 0 saves only
    the initial and the final state. `momentum` applies to SGD only. `lr_schedule(step)` (0-based
    step about to be taken) overrides `lr` when given; `schedule` names the schedule it implements
    (a spec of `lsdb.training.schedules`, recorded with the run; the service builds the function).
    `random_label_weight` w > 0 adds w times the loss on a random-labelled copy of the batch
    (cross-entropy only; see `random_labels`). The full splits are evaluated at the start, every
    `eval_every` epochs and after the last (0: start and end only); evaluation never changes the
    trajectory.
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    seed: int = 0
    save_every: int = 1
    save_unit: str = "epochs"
    loss: str = "cross_entropy"
    lr_schedule: Callable[[int], float] | None = field(default=None, compare=False)
    schedule: str = "constant"
    random_label_weight: float = 0.0
    eval_batch_size: int = 1024
    save_initial: bool = True
    log_every: int = 10
    eval_every: int = 1

    def check(self) -> None:
        """Raise `ValueError` with a one-line message naming the first invalid setting."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{self.optimizer}'; available: {', '.join(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss '{self.loss}'; available: {', '.join(LOSSES)}")
        if self.save_unit not in SAVE_UNITS:
            raise ValueError(f"save unit must be steps or epochs, got '{self.save_unit}'")
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(f"lr must be a finite number >= 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")
        for name in ("batch_size", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.eval_every < 0:
            raise ValueError(f"eval every must be >= 0 (0: at the start and the end only), got {self.eval_every}")
        if self.save_every < 0:
            raise ValueError(f"save every must be >= 0 (0: initial and final state only), got {self.save_every}")
        if not (math.isfinite(self.random_label_weight) and self.random_label_weight >= 0):
            raise ValueError(f"random label weight must be a finite number >= 0, got {self.random_label_weight}")
        if self.random_label_weight > 0 and self.loss != "cross_entropy":
            raise ValueError("random labels need a classification loss (cross_entropy)")

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that define the trajectory (what a run records as its params); `random_label_weight`
        and `schedule` only when they are used, so that ordinary runs record what they always did."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name in HYPERPARAMETERS
            and (f.name != "random_label_weight" or self.random_label_weight)
            and (f.name != "schedule" or self.schedule != "constant")
        }


@dataclass
class TrainState:
    """Everything needed to continue training exactly where a snapshot was taken.

    `step`: optimizer steps taken; `epoch`: completed epochs; `batch`: batches done in the
    current epoch. In a snapshot handed to `on_save`, `model` and `optimizer` hold the live
    tensors: valid during the call only, so copy what must outlive it.
    """

    step: int
    epoch: int
    batch: int
    optimizer: dict[str, Any]
    rng: dict[str, Tensor]
    model: dict[str, Tensor] | None = None
    epochs_done: float = 0.0


@dataclass(frozen=True)
class TrainSummary:
    """What a call to `train` did: steps and epochs reached, last metrics, snapshots, time."""

    step: int
    epochs_done: float
    metrics: dict[str, float]
    saves: int
    stopped: bool
    wall_s: float
    steps_run: int


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s example order: a hash, so nearby seeds give unrelated orders."""
    digest = hashlib.sha256(f"lsdb-train:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def random_labels(n: int, num_classes: int, seed: int) -> Tensor:
    """The fixed random labels of the training examples for `random_label_weight` (int64 (n,), CPU).

    Huang et al. 2019 ("Understanding Generalization through Visualizations", §4) find "bad"
    minima — which fit the training set but generalize poorly — by also fitting a copy of the
    data with random labels. Each example's random label is uniform over the classes, drawn once
    from a generator seeded by a hash of `seed`, so it is the same at every step and on resume.
    """
    digest = hashlib.sha256(f"lsdb-random-labels:{seed}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return torch.randint(num_classes, (n,), generator=gen)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with `momentum`) or Adam over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def loss_function(name: str) -> Callable[..., Tensor]:
    """``F.cross_entropy`` or ``F.mse_loss`` (mean over all elements, as ``nn.MSELoss``)."""
    return F.cross_entropy if name == "cross_entropy" else F.mse_loss


@torch.inference_mode()
def evaluate_split(model: nn.Module, x: Tensor, y: Tensor, loss: str, batch_size: int) -> tuple[float, float | None]:
    """Mean loss and accuracy (cross-entropy only) of `model` on (x, y), in eval mode, batched.

    The model is left in eval mode; the caller restores training mode.
    """
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out = model(xb)
        if loss == "cross_entropy":
            total += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
        else:
            total += F.mse_loss(out, yb, reduction="sum").double() / max(1, out[0].numel())
    n = max(1, len(x))
    return float(total) / n, (int(correct) / n if loss == "cross_entropy" else None)


def _n_outputs(model: nn.Module, x: Tensor) -> int:
    """The number of classes: the width of the model's output on one example (in eval mode, no RNG used)."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        width = model(x[:1]).shape[-1]
    model.train(was_training)
    return int(width)


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


@contextmanager
def _private_rng(device: torch.device, seed: int, state: dict[str, Tensor] | None) -> Iterator[None]:
    """Seed (or restore) the global RNG for the duration of training, then put the caller's back."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=devices):
        if state is not None:
            torch.set_rng_state(state["cpu"])
            if device.type == "cuda" and "cuda" in state:
                torch.cuda.set_rng_state(state["cuda"], device)
        else:
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
        yield


class _Losses:
    """Detached per-step losses, checked for NaN/inf in batches (one device sync per check)."""

    def __init__(self, first_step: int) -> None:
        self.pending: list[Tensor] = []
        self.first_step = first_step

    def drain(self) -> float:
        """Check every pending loss; raise `DivergedError` at the first bad one, else return their mean."""
        if not self.pending:
            return math.nan
        values = torch.stack(self.pending).double()
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise DivergedError(self.first_step + i, float(values[i]))
        self.first_step += len(self.pending)
        self.pending.clear()
        return float(values.mean())


def train(
    model: nn.Module,
    train_xy: tuple[Tensor, Tensor],
    test_xy: tuple[Tensor, Tensor] | None,
    config: TrainConfig,
    device: torch.device | str | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_save: Callable[[TrainState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: StepCallback | None = None,
    initial: TrainState | None = None,
) -> TrainSummary:
    """Train `model` in place for `config.epochs` epochs (counted from 0, also when resuming).

    Snapshots go to `on_save`: at initialization (unless resuming or ``save_initial=False``),
    every `save_every` steps or epochs, when `should_stop()` (checked after every step) says so,
    and at the end, never twice for one step. `on_epoch` receives the full-split train and test
    loss (and accuracy) at initialization and after every epoch. A NaN or infinite training loss
    raises `DivergedError` before any further callback. `initial` continues an earlier run.
    """
    config.check()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev)
    x, y = train_xy[0].to(dev), train_xy[1].to(dev)
    test = (test_xy[0].to(dev), test_xy[1].to(dev)) if test_xy is not None and len(test_xy[0]) else None
    n, bs = len(x), config.batch_size
    if n == 0:
        raise ValueError("the training split is empty")
    n_batches = math.ceil(n / bs)
    optimizer = make_optimizer(model, config)
    step, epoch, batch = 0, 0, 0
    if initial is not None:
        if initial.model is not None:
            model.load_state_dict(initial.model)
        optimizer.load_state_dict(initial.optimizer)
        step, epoch, batch = initial.step, initial.epoch, initial.batch
    loss_fn = loss_function(config.loss)
    weight = config.random_label_weight
    noisy = random_labels(n, _n_outputs(model, x), config.seed).to(dev) if weight > 0 else None
    schedule, every, by_steps = config.lr_schedule, config.save_every, config.save_unit == "steps"
    losses = _Losses(step + 1)
    saves, last_saved = 0, step if initial is not None else -1
    metrics: dict[str, float] = {}
    started, first_step = time.perf_counter(), step

    def snapshot(done_batches: int) -> None:
        nonlocal saves, last_saved
        if on_save is None or last_saved == step:
            return
        losses.drain()
        on_save(
            TrainState(
                step,
                epoch,
                done_batches,
                optimizer.state_dict(),
                _rng_state(dev),
                model.state_dict(),
                epoch + done_batches / n_batches,
            )
        )
        saves, last_saved = saves + 1, step

    def evaluate() -> dict[str, float]:
        out: dict[str, float] = {}
        for split, (xs, ys) in (("train", (x, y)), ("test", test)) if test is not None else (("train", (x, y)),):
            loss, acc = evaluate_split(model, xs, ys, config.loss, config.eval_batch_size)
            out[f"{split}_loss"] = loss
            if acc is not None:
                out[f"{split}_acc"] = acc
        if noisy is not None:  # how well the random-labelled copy is fitted
            noisy_loss, noisy_acc = evaluate_split(model, x, noisy, config.loss, config.eval_batch_size)
            out["random_label_loss"] = noisy_loss
            if noisy_acc is not None:
                out["random_label_acc"] = noisy_acc
        model.train()
        return out

    def summary(stopped: bool) -> TrainSummary:
        return TrainSummary(
            step, epoch + batch / n_batches, metrics, saves, stopped, time.perf_counter() - started, step - first_step
        )

    with _private_rng(dev, config.seed, initial.rng if initial is not None else None):
        model.train()
        if initial is None and config.save_initial:
            metrics = evaluate()
            if on_epoch is not None:
                on_epoch(metrics, 0, 0)
            snapshot(0)
        while epoch < config.epochs:
            gen = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
            order = torch.randperm(n, generator=gen).to(dev)
            while batch < n_batches:
                idx = order[batch * bs : (batch + 1) * bs]
                if schedule is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = schedule(step)
                logits = model(x[idx])
                loss = loss_fn(logits, y[idx])
                if noisy is not None:  # the random-labelled copy of the batch: same inputs, random labels
                    loss = loss + weight * loss_fn(logits, noisy[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                batch += 1
                losses.pending.append(loss.detach())
                if len(losses.pending) >= MAX_PENDING_LOSSES:
                    losses.drain()
                if on_step is not None and step % config.log_every == 0:
                    on_step(step, epoch + batch / n_batches, losses.drain())
                if should_stop is not None and should_stop():
                    snapshot(batch)
                    return summary(True)
                if by_steps and every and step % every == 0 and batch < n_batches:
                    snapshot(batch)
            losses.drain()
            epoch, batch = epoch + 1, 0
            if (config.eval_every and epoch % config.eval_every == 0) or epoch == config.epochs:
                metrics = evaluate()
                if on_epoch is not None:
                    on_epoch(metrics, epoch, step)
            if every and ((by_steps and step % every == 0) or (not by_steps and epoch % every == 0)):
                snapshot(0)
        snapshot(0)
    return summary(False)
