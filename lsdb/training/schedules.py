"""Learning-rate schedules by spec (`lsdb.specs` grammar), for `lsdb train --lr-schedule`.

The math is in `lsdb.landscape.schedules`; this module names it, checks specs and writes them
canonically (what a run records in its params), and turns one into the per-step learning rate
the training loop takes (`TrainConfig.lr_schedule`).
"""

from __future__ import annotations

from collections.abc import Callable

from lsdb.landscape.schedules import Factor, constant, cosine, garipov, linear, step
from lsdb.registry import FactoryRegistry
from lsdb.specs import Spec, parse_spec

SCHEDULES: FactoryRegistry[Factor] = FactoryRegistry("lr schedule")
for _name, _factory in (("constant", constant), ("cosine", cosine), ("linear", linear), ("step", step),
                        ("garipov", garipov)):
    SCHEDULES.register(_name, _factory)


def canonical_schedule(spec: str) -> str:
    """The spec checked and written canonically (sorted, typed arguments); `ValueError` names the problem."""
    from lsdb.errors import BadInput

    try:
        if parse_spec(spec, "lr schedule").name not in SCHEDULES:
            raise ValueError(f"unknown lr schedule '{spec}'; available: {', '.join(SCHEDULES.names())}")
        checked = SCHEDULES.validate(spec)
    except BadInput as exc:
        raise ValueError(str(exc)) from None
    try:
        SCHEDULES.factory(checked.name)(**checked.kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lr schedule '{spec}': {exc}") from None
    return str(Spec(checked.name, checked.kwargs))


def lr_at(spec: str, lr: float, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate of (0-based) step s of a run of `total_steps` steps:
    lr × factor(s / total_steps, s / steps_per_epoch)."""
    factor = SCHEDULES.build(spec)
    total, per_epoch = max(total_steps, 1), max(steps_per_epoch, 1)
    return lambda s: lr * factor(min(s / total, 1.0), s / per_epoch)
