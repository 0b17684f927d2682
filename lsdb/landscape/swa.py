"""Weight averaging and cyclical learning rates: SWA, FGE and snapshot-ensemble schedules, BatchNorm updates.

Stochastic Weight Averaging (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and
Better Generalization", UAI) runs SGD with a cyclical or constant learning rate and averages the
weights visited at the end of each cycle (Algorithm 1): w_SWA ← (w_SWA · n + w) / (n + 1). Since
the average is a network nobody trained, its BatchNorm statistics are recomputed with one pass
over the training data at the end.

`SwaAverage` and `update_bn` agree with ``torch.optim.swa_utils.AveragedModel`` and
``torch.optim.swa_utils.update_bn`` on the same sequence of models and batches, to the bit: the
same running-average arithmetic (``avg + (w − avg) / (n + 1)`` on a CPU, ``lerp`` where torch
uses its foreach kernels), buffers taken from the latest model, and BatchNorm statistics that
are the equal-weight average over batches (``momentum=None``). The one deliberate difference:
`update_bn` puts only the BatchNorm layers in training mode, so dropout stays off and the
statistics are deterministic; for a model without dropout the two are identical.

The schedules map the fraction of the run done (or the position within a cycle) to a learning
rate. They are plain functions so that any training loop can call them once per step:

* `swa_cyclic_lr`: Izmailov et al. 2018, §3.1, eq. (1): within each cycle of c iterations the
  rate falls linearly from α1 to α2, α(i) = (1 − t(i)) α1 + t(i) α2, t(i) = (mod(i − 1, c) + 1) / c;
* `swalr_lr`: ``torch.optim.swa_utils.SWALR``'s anneal from the current rate to the SWA rate
  (cosine or linear) over a number of steps, then constant (the same rates, stepped per iteration);
* `fge_cyclic_lr`: Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling
  of DNNs", NeurIPS), §5: α1 → α2 → α1 linearly over a cycle of c iterations, the snapshot taken
  at α2, mid-cycle;
* `snapshot_cosine_lr`: Huang et al. 2017 ("Snapshot Ensembles: Train 1, get M for free", ICLR),
  §3, eq. (2): α(t) = α0 / 2 · (cos(π · mod(t − 1, ⌈T/M⌉) / ⌈T/M⌉) + 1), a snapshot at each cycle end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

#: Devices on which torch's AveragedModel uses its foreach ``lerp`` kernel instead of the division formula.
_FOREACH_DEVICES = ("cuda", "xpu", "mtia")


class SwaAverage:
    """The running equal-weight average of a sequence of models (Izmailov et al. 2018, Algorithm 1).

    Mirrors ``torch.optim.swa_utils.AveragedModel(model)`` with its defaults: the first
    `update` copies the parameters, each later one moves the average by ``(w − avg) / (n + 1)``;
    buffers (BatchNorm statistics, counters) are those of the latest model, to be recomputed
    with `update_bn` once averaging ends.
    """

    def __init__(self) -> None:
        self.n_averaged = 0
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}

    def update(self, model: nn.Module | Mapping[str, Tensor], parameter_names: Sequence[str] | None = None) -> None:
        """Fold in one model (or a state dict, whose parameters `parameter_names` names)."""
        if isinstance(model, nn.Module):
            params = {n: p.detach() for n, p in model.named_parameters()}
            buffers = {n: b.detach() for n, b in model.named_buffers()}
        else:
            if parameter_names is None:
                raise ValueError("a state dict needs parameter_names: which of its tensors are parameters")
            names = set(parameter_names)
            params = {n: t.detach() for n, t in model.items() if n in names}
            buffers = {n: t.detach() for n, t in model.items() if n not in names}
            missing = names - set(params)
            if missing:
                raise ValueError(f"the state dict lacks parameter(s) {', '.join(sorted(missing)[:3])}")
        if self.n_averaged == 0:
            self.params = {n: p.clone() for n, p in params.items()}
        else:
            if set(params) != set(self.params):
                raise ValueError("every averaged model must have the same parameters")
            n = torch.tensor(self.n_averaged, dtype=torch.long)
            for name, avg in self.params.items():
                _swa_step(avg, params[name].to(avg.device), n)
        self.buffers = {n: b.clone() for n, b in buffers.items()}
        self.n_averaged += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged parameters plus the latest buffers (copies)."""
        if self.n_averaged == 0:
            raise ValueError("nothing has been averaged yet")
        return {**{n: t.clone() for n, t in self.params.items()}, **{n: t.clone() for n, t in self.buffers.items()}}


def _swa_step(avg: Tensor, current: Tensor, n: Tensor) -> None:
    """One AveragedModel update of `avg` towards `current` after `n` models (see the module docstring)."""
    if avg.is_floating_point() and avg.device.type in _FOREACH_DEVICES:
        avg.lerp_(current, float(1 / (n + 1)))
    else:
        avg.copy_(avg + (current - avg) / (n.to(avg.device) + 1))


def average_states(states: Iterable[Mapping[str, Tensor]], parameter_names: Sequence[str]) -> dict[str, Tensor]:
    """The SWA average of state dicts in the order given (buffers from the last), as `SwaAverage` computes it."""
    swa = SwaAverage()
    for state in states:
        swa.update(state, parameter_names)
    return swa.state_dict()


def batchnorm_modules(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of `model` that track running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def update_bn(model: nn.Module, batches: Iterable[Tensor]) -> None:
    """Recompute `model`'s BatchNorm running statistics from `batches` (as ``swa_utils.update_bn``).

    Resets the statistics, runs every batch with the BatchNorm layers in training mode and
    ``momentum=None`` (the equal-weight average over batches), then restores each layer's
    momentum and mode. Raises `ValueError` when the model has BatchNorm layers and `batches`
    is empty: there would be no statistics at all.
    """
    layers = batchnorm_modules(model)
    if not layers:
        return
    saved = [(m, m.momentum, m.training) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    try:
        for xb in batches:
            if len(xb):
                model(xb)
                seen += 1
    finally:
        for m, momentum, training in saved:
            m.momentum = momentum
            m.train(training)
    if seen == 0:
        raise ValueError("the model has BatchNorm layers but no training batch was given to recompute their statistics")


# --- learning-rate schedules -------------------------------------------------------------


def swa_cyclic_lr(step: int, cycle_steps: int, lr_max: float, lr_min: float) -> float:
    """Izmailov et al. 2018, eq. (1) for the 0-based `step`: linear from `lr_max` to `lr_min` within each cycle.

    t(i) = (mod(i − 1, c) + 1) / c with i = step + 1, so the last step of each cycle runs at `lr_min`
    and the first step of the next one jumps back up.
    """
    _check_cycle(cycle_steps)
    t = ((step % cycle_steps) + 1) / cycle_steps
    return (1.0 - t) * lr_max + t * lr_min


def swalr_lr(step: int, anneal_steps: int, lr_start: float, swa_lr: float, strategy: str = "cos") -> float:
    """The rate of ``torch.optim.swa_utils.SWALR`` after `step` scheduler steps: from `lr_start` to `swa_lr`.

    With t = min(1, step / anneal_steps) and α = (1 − cos πt) / 2 (``cos``) or t (``linear``):
    α · swa_lr + (1 − α) · lr_start, i.e. `lr_start` at step 0 and `swa_lr` from `anneal_steps` on.
    """
    if strategy not in ("cos", "linear"):
        raise ValueError(f"anneal strategy must be 'cos' or 'linear', got {strategy!r}")
    t = 1.0 if anneal_steps <= 0 else min(1.0, step / anneal_steps)
    alpha = (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t
    return swa_lr * alpha + lr_start * (1 - alpha)


def fge_cyclic_lr(step: int, cycle_steps: int, lr_max: float, lr_min: float) -> float:
    """Garipov et al. 2018, §5 (FGE), for the 0-based `step`: α1 → α2 over the first half of a cycle, back after.

    t(i) = (mod(i − 1, c) + 1) / c with i = step + 1; α(i) = (1 − 2t) α1 + 2t α2 for t ≤ 1/2 and
    (2 − 2t) α2 + (2t − 1) α1 after. The step that ends the first half of a cycle runs at exactly
    α2: the snapshot taken after it is the paper's.
    """
    _check_cycle(cycle_steps)
    t = ((step % cycle_steps) + 1) / cycle_steps
    if t <= 0.5:
        return (1.0 - 2.0 * t) * lr_max + 2.0 * t * lr_min
    return (2.0 - 2.0 * t) * lr_min + (2.0 * t - 1.0) * lr_max


def snapshot_cosine_lr(step: int, cycle_steps: int, lr_max: float) -> float:
    """Huang et al. 2017, eq. (2) for the 0-based `step`: a cosine from `lr_max` towards 0 in each cycle, restarted."""
    _check_cycle(cycle_steps)
    return lr_max / 2.0 * (math.cos(math.pi * (step % cycle_steps) / cycle_steps) + 1.0)


def _check_cycle(cycle_steps: int) -> None:
    if cycle_steps < 1:
        raise ValueError(f"a cycle needs at least one step, got {cycle_steps}")
