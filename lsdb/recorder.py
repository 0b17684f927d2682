"""The record API: log checkpoints and metrics from your own training loop.

::

    import lsdb

    with lsdb.record(run="mlp-seed0", model="mlp:widths=[64]", dataset="digits") as rec:
        for epoch in range(10):
            ...  # train
            rec.log("lr", scheduler.get_last_lr()[0], step)
            rec.checkpoint(model, step=step, epoch=epoch + 1, metrics={"train_loss": loss})

It writes the same rows as ``lsdb ingest`` and ``lsdb train``: checkpoints through
`lsdb.ingest.add_tensors`, metric values through `MetricRepository.add`. Metrics are buffered
and written in batches (at every checkpoint, every `FLUSH_ITEMS` values or `FLUSH_S` seconds,
and on exit). The run is ``running`` inside the block, ``complete`` after it, and
``incomplete`` when the block raises; what was recorded before stays either way.

(The module is ``recorder``, not ``record``: a submodule named ``record`` would replace the
function `lsdb.record` with itself the moment anything imported it.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lsdb.errors import BadInput

if TYPE_CHECKING:
    from lsdb.catalog import CatalogDB, CheckpointRecord, NewRun, RunRecord
    from lsdb.registry import Registries

FLUSH_ITEMS = 1000
FLUSH_S = 5.0


class Recorder:
    """Records checkpoints and metrics into one run; made by `record`."""

    def __init__(self, catalog: CatalogDB, run: RunRecord, new_run: NewRun,
                 registries: Registries | None = None) -> None:
        self.catalog = catalog
        self.registries = registries
        self.run = run
        self._new_run = new_run
        self._buffer: list[tuple[str, int, float]] = []
        self._flushed = time.monotonic()
        self._checked: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()
        self._check: Any = None
        self.checkpoints: list[CheckpointRecord] = []

    def log(self, key: str, value: float | Any, step: int) -> None:
        """Record `value` (a number or a one-element tensor) of metric `key` at `step` (buffered)."""
        if not isinstance(key, str) or not key:
            raise BadInput(f"metric key must be a non-empty string, got {key!r}")
        if isinstance(step, bool) or not isinstance(step, int):
            raise BadInput(f"metric '{key}': step must be an int, got {step!r}")
        try:
            number = float(value.detach() if hasattr(value, "detach") else value)
        except (TypeError, ValueError, RuntimeError):
            raise BadInput(f"metric '{key}': value must be a number, got {type(value).__name__}") from None
        self._buffer.append((key, step, number))
        if len(self._buffer) >= FLUSH_ITEMS or time.monotonic() - self._flushed >= FLUSH_S:
            self.flush()

    def checkpoint(
        self,
        model_or_state: Any,
        *,
        step: int | None = None,
        epoch: float | None = None,
        metrics: Mapping[str, float] | None = None,
        label: str | None = None,
    ) -> CheckpointRecord:
        """Store a module's state dict (or a state dict) as a checkpoint; `metrics` are logged at `step`.

        When the run has a model and a dataset spec, the tensors must fit that model (the first
        mismatching tensor is named). Returns the checkpoint (an existing one for the same weights).
        """
        from lsdb.ingest import add_tensors

        tensors = _state_dict(model_or_state)
        if metrics and step is None:
            raise BadInput("checkpoint metrics need a step: rec.checkpoint(model, step=..., metrics={...})")
        self._check_fits(tensors)
        events = self.registries.events if self.registries is not None else None
        record, _ = add_tensors(self.catalog, self._new_run, tensors, step=step, epoch=epoch, label=label,
                                events=events)
        self.checkpoints.append(record)
        for key, value in (metrics or {}).items():
            self.log(key, value, step)  # type: ignore[arg-type]
        self.flush()
        return record

    def flush(self) -> None:
        """Write the buffered metric values now (one transaction)."""
        items, self._buffer, self._flushed = self._buffer, [], time.monotonic()
        if items:
            self.catalog.metrics.add(self.run.id, items)

    def _check_fits(self, tensors: Mapping[str, Any]) -> None:
        spec = self.run.model_spec, self.run.dataset_spec
        if spec[0] is None or spec[1] is None:
            return
        shapes = tuple(sorted((k, tuple(v.shape)) for k, v in tensors.items()))
        if shapes in self._checked:
            return
        if self._check is None:
            from lsdb.runs import state_dict_check

            self._check = state_dict_check(spec[0], spec[1], self.registries)
        self._check(tensors)
        self._checked.add(shapes)


def _state_dict(obj: Any) -> dict[str, Any]:
    import torch

    if isinstance(obj, torch.nn.Module):
        from lsdb.landscape.params import tied_names

        tied = tied_names(obj)  # tied weights (an LM head sharing the embedding) are stored once
        return {k: v for k, v in obj.state_dict().items() if k not in tied}
    if isinstance(obj, Mapping):
        bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
        if bad is not None:
            raise BadInput(
                f"checkpoint entry '{bad}' is {type(obj[bad]).__name__}, not a tensor; pass model.state_dict()"
            )
        return dict(obj)
    raise BadInput(f"rec.checkpoint takes an nn.Module or a state dict, not {type(obj).__name__}")


@contextmanager
def record(
    run: str,
    model: str | dict[str, Any] | None = None,
    dataset: str | dict[str, Any] | None = None,
    project: str = "default",
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    catalog: CatalogDB | None = None,
    loss: str | None = None,
    registries: Registries | None = None,
) -> Iterator[Recorder]:
    """Record into run `project/run` (created if new; specs and loss validated first).

    `catalog` defaults to the one `lsdb.open_catalog()` opens (closed again on exit). See the module docstring.
    """
    from lsdb.catalog import CatalogDB as Database
    from lsdb.config import Settings
    from lsdb.runs import make_new_run

    new_run = make_new_run(
        run,
        project,
        model=model,
        dataset=dataset,
        loss=loss,
        params=dict(params or {}),
        tags=dict(tags or {}),
        status="running",
        registries=registries,
    )
    own = catalog is None
    cat = Database(Settings.resolve()) if catalog is None else catalog
    try:
        record = cat.runs.add(new_run)
        cat.runs.set_status(record.id, "running")
        from lsdb.catalog import NewRun

        rec = Recorder(cat, record, NewRun(run, project), registries)
        try:
            yield rec
        except BaseException:
            try:
                rec.flush()
            finally:
                cat.runs.set_status(record.id, "incomplete")
            raise
        try:
            rec.flush()
        except BaseException:
            cat.runs.set_status(record.id, "incomplete")
            raise
        cat.runs.set_status(record.id, "complete")
    finally:
        if own:
            cat.close()
