"""Learning-rate schedules: the factor applied to the base learning rate as training progresses.

Each factory returns a function of (t, epoch): t ∈ [0, 1] the fraction of the run's steps already
taken, epoch the (fractional) epochs done; the learning rate of a step is ``lr × factor(t, epoch)``,
with t and epoch taken before the step. `lsdb.training.schedules` names them for specs such as
``cosine``, ``step:milestones=[30,60],gamma=0.1`` or ``garipov:final=0.01``.

* ``constant``: 1;
* ``cosine:final=0``: final + (1 − final)·(1 + cos πt)/2 (Loshchilov & Hutter 2017, "SGDR", without restarts);
* ``linear:final=0``: 1 − (1 − final)·t;
* ``step:milestones=[...],gamma=0.1``: gamma to the number of milestones (in epochs) reached;
* ``garipov:final=0.01``: 1 for the first half of training, then linearly down to `final` at 90 %,
  then `final` (Garipov et al. 2018, the schedule of their curve and FGE experiments' pre-training).
"""

from __future__ import annotations

import math
from collections.abc import Callable

Factor = Callable[[float, float], float]


def constant() -> Factor:
    """The base learning rate throughout."""
    return lambda t, epoch: 1.0


def cosine(final: float = 0.0) -> Factor:
    """Cosine annealing from 1 to `final` over the run."""
    _check_final(final)
    return lambda t, epoch: final + (1.0 - final) * (1.0 + math.cos(math.pi * t)) / 2.0


def linear(final: float = 0.0) -> Factor:
    """Linear decay from 1 to `final` over the run."""
    _check_final(final)
    return lambda t, epoch: 1.0 - (1.0 - final) * t


def step(milestones: list[int] | None = None, gamma: float = 0.1) -> Factor:
    """Multiply by `gamma` at each milestone epoch."""
    marks = sorted(int(m) for m in (milestones or []))
    if any(m < 0 for m in marks):
        raise ValueError(f"step milestones must be epochs >= 0, got {marks}")
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"step gamma must be a finite number >= 0, got {gamma}")
    return lambda t, epoch: gamma ** sum(1 for m in marks if epoch >= m)


def garipov(final: float = 0.01) -> Factor:
    """1 until half-way, linear down to `final` at 90 %, then `final` (Garipov et al. 2018)."""
    _check_final(final)

    def factor(t: float, epoch: float) -> float:
        if t <= 0.5:
            return 1.0
        if t <= 0.9:
            return 1.0 - (1.0 - final) * (t - 0.5) / 0.4
        return final

    return factor


def _check_final(final: float) -> None:
    if not (math.isfinite(final) and 0.0 <= final <= 1.0):
        raise ValueError(f"the final learning-rate factor must be in [0, 1], got {final}")
