"""Training settings from the command line or the API: a checked `TrainConfig`, and the device."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from lsdb.errors import BadInput

if TYPE_CHECKING:
    from lsdb.catalog import RunRecord
    from lsdb.landscape.training import TrainConfig

#: Settings a resumed run may change; every other hyperparameter must stay what the run used.
RESUMABLE_CHANGES = ("epochs", "save_every", "save_unit", "eval_batch_size", "log_every", "eval_every")


def make_config(config: TrainConfig | Mapping[str, Any] | None = None, base: TrainConfig | None = None) -> TrainConfig:
    """A checked `TrainConfig`: `config` itself, or `base` (default settings) updated by a mapping."""
    from lsdb.landscape.training import TrainConfig

    if config is None or isinstance(config, Mapping):
        changes = dict(config or {})
        known = [f.name for f in fields(TrainConfig)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise BadInput(f"unknown training setting '{unknown[0]}'; accepted: {', '.join(known)}")
        config = replace(base or TrainConfig(), **changes)
    try:
        config.check()
        if config.schedule != "constant":
            from lsdb.training.schedules import canonical_schedule

            config = replace(config, schedule=canonical_schedule(config.schedule))
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return config


def stored_hyperparameters(run: RunRecord) -> dict[str, Any]:
    """The hyperparameters a run recorded, with the types `TrainConfig` uses (the catalog keeps floats)."""
    from lsdb.landscape.training import HYPERPARAMETERS, TrainConfig

    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    return {k: types[k](v) for k, v in run.params.items() if k in HYPERPARAMETERS}
