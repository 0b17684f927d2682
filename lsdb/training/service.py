"""`train_run`: train a zoo model on a dataset as a catalog run (see the package docstring)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from lsdb.catalog import CatalogDB, CheckpointRecord, NewRun, RunRecord
from lsdb.devices import resolve_device
from lsdb.errors import BadInput, LsdbError, NotFound, StoreError
from lsdb.runs import make_new_run
from lsdb.training.config import RESUMABLE_CHANGES, make_config, stored_hyperparameters
from lsdb.training.state import decode_resume_state, encode_resume_state
from lsdb.training.writer import CatalogWriter, copy_optimizer, copy_tensors

#: A checkpoint keeps the training state needed to resume from it when it is the run's first or last,
#: when training was asked to stop, or when the last kept one is this many seconds old: a run that
#: saves every 20 ms does not write (and fsync) its optimizer state 50 times a second, and a crash
#: costs at most this much training on `--resume` (which continues from the latest kept state).
RESUME_STATE_EVERY_S = 10.0

if TYPE_CHECKING:
    import torch

    from lsdb.landscape.training import TrainConfig, TrainState, TrainSummary
    from lsdb.registry import Registries


@dataclass(frozen=True)
class TrainProgress:
    """Handed to `train_run`'s `progress`: at the start, every few steps, and after each epoch."""

    step: int
    total_steps: int
    epochs_done: float
    loss: float | None = None
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class TrainResult:
    """The run as it ended, what training did, and the checkpoints this call saved."""

    run: RunRecord
    summary: TrainSummary
    device: str
    checkpoints: tuple[CheckpointRecord, ...]
    resumed_from: int | None = None


def train_run(
    catalog: CatalogDB,
    name: str,
    project: str = "default",
    model: str | dict[str, Any] | None = None,
    dataset: str | dict[str, Any] | None = None,
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    tags: Mapping[str, str] | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    background_writes: bool = True,
    registries: Registries | None = None,
) -> TrainResult:
    """Train `model` on `dataset` as run `project/name` and record it; see the package docstring.

    `config` is a `TrainConfig` or a mapping of the settings to change: from the defaults for a
    new run, from what the run used when `resume` is set (then only `RESUMABLE_CHANGES` may
    differ, and `epochs` counts from the start of the run). Divergence (NaN/inf loss) is
    `BadInput` naming the step; anything else that stops training is re-raised after the run
    is marked ``incomplete``.
    """
    from lsdb.data import load_dataset
    from lsdb.models import build_model
    from lsdb.plugins import resolve

    registries = resolve(registries)

    dev = resolve_device(device)
    model_spec: str | dict[str, Any]
    dataset_spec: str | dict[str, Any]
    if resume:
        run, start, cfg = _resume_point(catalog, name, project, model, dataset, config)
        model_spec, dataset_spec = run.model_spec or {}, run.dataset_spec or {}
    else:
        if model is None or dataset is None:
            raise BadInput("training needs a model spec and a dataset spec (e.g. --model mlp --dataset digits)")
        cfg, start, model_spec, dataset_spec = make_config(config), None, model, dataset
    new_run = make_new_run(  # checks the name and the specs before any work
        name, project, model=model_spec, dataset=dataset_spec, loss=cfg.loss,
        params=cfg.hyperparameters(), tags=dict(tags or {}), status="running", registries=registries,
    )  # fmt: skip
    if not resume and catalog.runs.find(name, project) is not None:
        raise BadInput(
            f"run '{name}' already exists in project '{project}'; pass --resume to continue it or choose another --run"
        )
    data = load_dataset(dataset_spec, registries.datasets)
    _check_loss(cfg.loss, data.task, data.name)
    net = build_model(model_spec, data.input_shape, data.num_classes, registries.models, seed=cfg.seed)
    if start is not None:
        _load_weights(catalog, net, start[0])
    run = catalog.runs.add(new_run)
    if start is not None:  # a new run is created running; a resumed one was complete or incomplete
        catalog.runs.set_status(run.id, "running")
    logged = {(m.key, m.step) for m in catalog.metrics.list(run.id)} if start is not None else set()
    writer = CatalogWriter(catalog, NewRun(name, project), run.id, background_writes)
    n_batches = -(-len(data.train[0]) // cfg.batch_size)
    total = cfg.epochs * n_batches
    if cfg.schedule != "constant" and cfg.lr_schedule is None:
        from lsdb.training.schedules import lr_at

        cfg = replace(cfg, lr_schedule=lr_at(cfg.schedule, cfg.lr, total, n_batches))
    ok = False
    try:
        summary = _train(net, data, cfg, dev, writer, run.id, logged, total, start, progress, should_stop)
        ok = not summary.stopped
    except BaseException as exc:
        writer.close(raise_error=False)
        catalog.runs.set_status(run.id, "incomplete")
        from lsdb.landscape.training import DivergedError

        if isinstance(exc, DivergedError):
            kept = max([c.step or 0 for c in writer.saved] + ([start[0].step or 0] if start else []), default=None)
            where = f"checkpoints up to step {kept} are kept" if kept is not None else "no checkpoint was saved"
            raise BadInput(f"training diverged: {exc}; {where}") from None
        raise
    try:
        writer.close()
    finally:
        catalog.runs.set_status(run.id, "complete" if ok else "incomplete")
    return TrainResult(catalog.runs.get(run.id), summary, dev, tuple(writer.saved), start[0].step if start else None)


def _train(
    net: torch.nn.Module,
    data: Any,
    cfg: TrainConfig,
    device: str,
    writer: CatalogWriter,
    run_id: int,
    logged: set[tuple[str, int]],
    total: int,
    start: tuple[CheckpointRecord, TrainState] | None,
    progress: Callable[[TrainProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> TrainSummary:
    """Run the loop with callbacks that hand snapshots and metrics to the writer."""
    from lsdb.ingest import publish_tensors
    from lsdb.landscape.training import train

    catalog = writer.catalog
    train_xy, test_xy = data.train, data.test

    stopping = False
    last_state = -math.inf  # when a resume state was last kept (time.monotonic)

    def stop_requested() -> bool:
        nonlocal stopping
        stopping = should_stop is not None and should_stop()
        return stopping

    def on_save(state: TrainState) -> None:
        nonlocal last_state
        now = time.monotonic()
        keep_state = now - last_state >= RESUME_STATE_EVERY_S or state.step >= total or stopping
        model_copy = copy_tensors(state.model or {})
        snapshot = replace(state, model=None, optimizer=copy_optimizer(state.optimizer)) if keep_state else None
        if keep_state:
            last_state = now

        def write() -> None:
            meta = None
            if snapshot is not None:
                meta = {"resume_state": catalog.objects.put_bytes(encode_resume_state(snapshot, cfg)).digest}
            new = publish_tensors(catalog.objects, model_copy, step=state.step, epoch=state.epochs_done, meta=meta)
            writer.stage(new)

        writer.put(write)

    def on_epoch(metrics: dict[str, float], epoch: int, step: int) -> None:
        writer.add_metrics([(k, step, v) for k, v in metrics.items() if (k, step) not in logged])
        if progress is not None:
            progress(TrainProgress(step, total, float(epoch), None, metrics))

    def on_step(step: int, epochs_done: float, loss: float) -> None:
        if progress is not None:
            progress(TrainProgress(step, total, epochs_done, loss))

    if progress is not None:
        progress(TrainProgress(start[1].step if start else 0, total, start[1].epochs_done if start else 0.0))
    return train(
        net,
        train_xy,
        test_xy,
        cfg,
        device,
        on_epoch=on_epoch,
        on_save=on_save,
        should_stop=stop_requested if should_stop is not None else None,
        on_step=on_step if progress is not None else None,
        initial=start[1] if start else None,
    )


def _check_loss(loss: str, task: str, dataset: str) -> None:
    if loss == "mse" and task != "regression":
        raise BadInput(
            f"loss mse needs a regression dataset; '{dataset}' is a classification dataset (use cross_entropy)"
        )
    if loss == "cross_entropy" and task != "classification":
        raise BadInput(
            f"loss cross_entropy needs a classification dataset; '{dataset}' is a regression dataset (use mse)"
        )


def _resume_point(
    catalog: CatalogDB,
    name: str,
    project: str,
    model: str | dict[str, Any] | None,
    dataset: str | dict[str, Any] | None,
    config: TrainConfig | Mapping[str, Any] | None,
) -> tuple[RunRecord, tuple[CheckpointRecord, TrainState], TrainConfig]:
    """The run, its latest resumable checkpoint with its saved state, and the config to continue with."""
    from lsdb.runs import dataset_spec_json, model_spec_json

    run = catalog.runs.find(name, project)
    if run is None:
        raise BadInput(f"run '{name}' does not exist in project '{project}'; nothing to resume")
    for what, given, spec in (
        ("model", model_spec_json(model), run.model_spec),
        ("dataset", dataset_spec_json(dataset), run.dataset_spec),
    ):
        if given is not None and given != spec:
            raise BadInput(f"run '{name}' was trained with {what} {spec}; --resume continues it with the same {what}")
    resumable = [c for c in catalog.checkpoints.list(run.id) if c.meta and "resume_state" in c.meta]
    if not resumable or run.model_spec is None or run.dataset_spec is None:
        raise BadInput(f"run '{name}' has no saved training state (it was not made by `lsdb train`); nothing to resume")
    latest = max(resumable, key=lambda c: (c.step or 0, c.id))
    digest = latest.meta["resume_state"] if latest.meta else ""
    try:
        state, settings = decode_resume_state(catalog.objects.read_verified(digest))
    except NotFound:
        raise StoreError(
            f"cannot resume run '{name}' from step {latest.step}: its training state (object {digest[:12]}) "
            "is missing from the store (was it removed by `lsdb gc`?)"
        ) from None
    except LsdbError as exc:
        raise LsdbError(f"cannot resume run '{name}' from step {latest.step}: {exc}") from None
    stored = make_config({**stored_hyperparameters(run), **settings, "loss": run.loss})
    cfg = make_config(config, stored)
    changed = [
        f.name
        for f in fields(cfg)
        if f.name not in RESUMABLE_CHANGES
        and f.name != "lr_schedule"
        and getattr(cfg, f.name) != getattr(stored, f.name)
    ]
    if changed:
        key = changed[0]
        raise BadInput(
            f"run '{name}' was trained with {key}={getattr(stored, key)}; --resume continues with the same "
            f"hyperparameters (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )
    if state.epoch >= cfg.epochs:
        raise BadInput(
            f"run '{name}' has already trained {state.epochs_done:g} epochs (asked for {cfg.epochs}); "
            "pass a larger --epochs to continue training"
        )
    return run, (latest, state), cfg


def _load_weights(catalog: CatalogDB, net: torch.nn.Module, checkpoint: CheckpointRecord) -> None:
    from safetensors.torch import load

    tensors = load(catalog.objects.read_verified(checkpoint.blob_digest))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise BadInput(f"checkpoint {checkpoint.id} does not fit the run's model: {first}") from None
