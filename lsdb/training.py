"""`lsdb train`'s service: train a zoo model on a dataset and record the trajectory in the catalog.

`train_run` resolves the specs, creates the run (status ``running``), drives
`lsdb.landscape.training.train`, and turns its snapshots into checkpoints (`add_tensors`) and
its per-epoch evaluations into metrics (train_loss, train_acc, test_loss, test_acc at the
global step). The run ends ``complete``, or ``incomplete`` when training stops early for any
reason; whatever was saved before stays.

Checkpoints hold model weights only. What an exact continuation needs besides (optimizer
state, RNG state, step and epoch) is a separate safetensors object in the store whose digest
the checkpoint's ``meta["resume_state"]`` records, so every checkpoint `lsdb train` wrote can be
resumed from, and the pointer is committed in the same transaction as the checkpoint.

Writes happen on a background thread, in order, so the training loop never waits for a
fsync or a database commit: measured with ``scripts/bench_train.py``, writing a checkpoint
per epoch synchronously would cost more than the epoch itself on the digits MLP. The thread
gets its own copy of the tensors (one memcpy; on a GPU the device-to-host copy any save needs).
"""

from __future__ import annotations

import json
import queue
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from lsdb.catalog import Catalog, CheckpointRecord, NewRun, RunRecord
from lsdb.errors import BadInput, LsdbError, StoreError
from lsdb.runs import make_new_run

if TYPE_CHECKING:
    import torch

    from lsdb.landscape.training import TrainConfig, TrainState, TrainSummary

RESUME_FORMAT = "lsdb-train-state/1"
#: Settings a resumed run may change; every other hyperparameter must stay what the run used.
RESUMABLE_CHANGES = ("epochs", "save_every", "save_unit", "eval_batch_size", "log_every")
_WRITE_AHEAD = 4  # snapshots queued before training waits for the writer (bounds memory)
#: Metrics are written at most this often (and always at the end): a transaction per epoch
#: costs more than a digits epoch. Checkpoints are never delayed.
METRICS_FLUSH_S = 2.0


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


def resolve_device(name: str = "auto") -> str:
    """``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``; an unavailable device is `BadInput`."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if not torch.cuda.is_available():
            raise BadInput(f"device '{name}' is not available: torch sees no GPU; use --device cpu")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise BadInput(f"device '{name}' does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return name
    raise BadInput(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto")


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
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return config


def train_run(
    catalog: Catalog,
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
) -> TrainResult:
    """Train `model` on `dataset` as run `project/name` and record it; see the module docstring.

    `config` is a `TrainConfig` or a mapping of the settings to change: from the defaults for a
    new run, from what the run used when `resume` is set (then only `RESUMABLE_CHANGES` may
    differ, and `epochs` counts from the start of the run). Divergence (NaN/inf loss) is
    `BadInput` naming the step; anything else that stops training is re-raised after the run
    is marked ``incomplete``.
    """
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    dev = resolve_device(device)
    if resume:
        run, start, cfg = _resume_point(catalog, name, project, model, dataset, config)
        model_spec, dataset_spec = run.model_spec, run.dataset_spec
    else:
        if model is None or dataset is None:
            raise BadInput("training needs a model spec and a dataset spec (e.g. --model mlp --dataset digits)")
        cfg, start = make_config(config), None
        make_new_run(name, project, model=model, dataset=dataset, loss=cfg.loss)  # name and specs: fail before any work
        model_spec, dataset_spec = model, dataset
        if catalog.find_run(name, project) is not None:
            raise BadInput(
                f"run '{name}' already exists in project '{project}'; pass --resume to continue it or choose another --run"
            )
    data = load_dataset(dataset_spec)
    _check_loss(cfg.loss, data.task, data.name)
    net = build_model(model_spec, data.input_shape, data.num_classes, seed=cfg.seed)
    if start is not None:
        _load_weights(catalog, net, start[0])
    new_run = make_new_run(
        name, project, model=model_spec, dataset=dataset_spec, loss=cfg.loss,
        params=cfg.hyperparameters(), tags=dict(tags or {}), status="running",
    )
    run = catalog.add_run(new_run)
    catalog.set_run_status(run.id, "running")
    logged = {(m.key, m.step) for m in catalog.list_metrics(run.id)} if start is not None else set()
    writer = _Writer(catalog, NewRun(name, project), run.id, background_writes)
    n_batches = -(-len(data.train[0]) // cfg.batch_size)
    total = cfg.epochs * n_batches
    ok = False
    try:
        summary = _train(net, data, cfg, dev, writer, run.id, logged, total, start, progress, should_stop)
        ok = not summary.stopped
    except BaseException as exc:
        writer.close(raise_error=False)
        catalog.set_run_status(run.id, "incomplete")
        from lsdb.landscape.training import DivergedError

        if isinstance(exc, DivergedError):
            kept = max([c.step or 0 for c in writer.saved] + ([start[0].step or 0] if start else []), default=None)
            where = f"checkpoints up to step {kept} are kept" if kept is not None else "no checkpoint was saved"
            raise BadInput(f"training diverged: {exc}; {where}") from None
        raise
    try:
        writer.close()
    finally:
        catalog.set_run_status(run.id, "complete" if ok else "incomplete")
    return TrainResult(catalog.get_run(run.id), summary, dev, tuple(writer.saved), start[0].step if start else None)


def _train(
    net: torch.nn.Module,
    data: Any,
    cfg: TrainConfig,
    device: str,
    writer: _Writer,
    run_id: int,
    logged: set[tuple[str, int]],
    total: int,
    start: tuple[CheckpointRecord, TrainState] | None,
    progress: Callable[[TrainProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> TrainSummary:
    """Run the loop with callbacks that hand snapshots and metrics to the writer."""
    from lsdb.landscape.training import train

    catalog = writer.catalog
    train_xy, test_xy = data.train, data.test

    def on_save(state: TrainState) -> None:
        model_copy = _copy_tensors(state.model or {})
        snapshot = replace(state, model=None, optimizer=_copy_optimizer(state.optimizer))

        def write() -> CheckpointRecord:
            digest = catalog.objects.put_bytes(encode_resume_state(snapshot, cfg)).digest
            from lsdb.ingest import add_tensors

            record, _ = add_tensors(
                catalog, writer.run, model_copy, step=state.step, epoch=state.epochs_done, meta={"resume_state": digest}
            )
            return record

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
        net, train_xy, test_xy, cfg, device, on_epoch=on_epoch, on_save=on_save,
        should_stop=should_stop, on_step=on_step, initial=start[1] if start else None,
    )


def _check_loss(loss: str, task: str, dataset: str) -> None:
    if loss == "mse" and task != "regression":
        raise BadInput(f"loss mse needs a regression dataset; '{dataset}' is a classification dataset (use cross_entropy)")
    if loss == "cross_entropy" and task != "classification":
        raise BadInput(f"loss cross_entropy needs a classification dataset; '{dataset}' is a regression dataset (use mse)")


class _Writer:
    """Runs catalog writes in order, on a background thread (or inline), and remembers the checkpoints.

    An error in the thread stops further writes and is raised in the training thread at its next
    `put` (or at `close`), so training never runs on while its checkpoints are not being saved.
    """

    def __init__(self, catalog: Catalog, run: NewRun, run_id: int, background: bool) -> None:
        self.catalog, self.run, self.run_id = catalog, run, run_id
        self.saved: list[CheckpointRecord] = []
        self.metrics: list[tuple[str, int, float]] = []
        self._flushed = time.monotonic()
        self.error: BaseException | None = None
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=_WRITE_AHEAD)
        self._thread = threading.Thread(target=self._loop, name="lsdb-train-writer", daemon=True) if background else None
        if self._thread is not None:
            self._thread.start()

    def put(self, job: Callable[[], Any]) -> None:
        if self.error is not None:
            raise self.error
        if self._thread is None:
            self._record(job())
        else:
            self._queue.put(job)

    def add_metrics(self, items: list[tuple[str, int, float]]) -> None:
        """Buffer metric values; hand them to the thread every `METRICS_FLUSH_S` seconds."""
        self.metrics.extend(items)
        if self.metrics and time.monotonic() - self._flushed >= METRICS_FLUSH_S:
            self.flush_metrics()

    def flush_metrics(self) -> None:
        items, self.metrics, self._flushed = self.metrics, [], time.monotonic()
        if items:
            self.put(lambda: self.catalog.add_metrics(self.run_id, items))

    def _record(self, value: Any) -> None:
        if isinstance(value, CheckpointRecord):
            self.saved.append(value)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._record(job())
                except BaseException as exc:  # handed to the training thread
                    self.error = exc

    def close(self, raise_error: bool = True) -> None:
        """Write the buffered metrics, finish every queued write; then raise the first write error, if any."""
        if self.error is None:
            try:
                self.flush_metrics()
            except BaseException as exc:  # inline writes fail here
                self.error = exc
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if raise_error and self.error is not None:
            raise self.error


def _copy_tensors(tensors: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}


def _copy_optimizer(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    per_param = {
        pid: {k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v for k, v in values.items()}
        for pid, values in state["state"].items()
    }
    return {"state": per_param, "param_groups": json.loads(json.dumps(state["param_groups"], default=list))}


def encode_resume_state(state: TrainState, config: TrainConfig) -> bytes:
    """A safetensors file: optimizer tensors and RNG states, the rest as JSON in its metadata."""
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {f"rng.{k}": v for k, v in state.rng.items()}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in state.optimizer["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {
        "format": RESUME_FORMAT,
        "step": state.step,
        "epoch": state.epoch,
        "batch": state.batch,
        "epochs_done": state.epochs_done,
        "param_groups": state.optimizer["param_groups"],
        "scalars": scalars,
        "settings": {k: getattr(config, k) for k in RESUMABLE_CHANGES if k != "epochs"},
    }
    return save(tensors, metadata={"lsdb": json.dumps(meta, sort_keys=True)})


def decode_resume_state(data: bytes) -> tuple[TrainState, dict[str, Any]]:
    """The `TrainState` (without model weights) and the saved settings of `encode_resume_state`."""
    from safetensors.torch import load

    from lsdb.landscape.training import TrainState

    try:
        (length,) = struct.unpack("<Q", data[:8])
        meta = json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["lsdb"])
        tensors = load(data)
    except Exception as exc:
        raise StoreError(f"the saved training state is unreadable ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != RESUME_FORMAT:
        raise StoreError(f"unknown training state format {meta.get('format')!r}; expected {RESUME_FORMAT}")
    per_param: dict[int, dict[str, Any]] = {int(p): dict(v) for p, v in meta["scalars"].items()}
    rng = {}
    for name, tensor in tensors.items():
        kind, _, rest = name.partition(".")
        if kind == "rng":
            rng[rest] = tensor
        else:
            pid, _, key = rest.partition(".")
            per_param.setdefault(int(pid), {})[key] = tensor
    optimizer = {"state": per_param, "param_groups": meta["param_groups"]}
    state = TrainState(meta["step"], meta["epoch"], meta["batch"], optimizer, rng, None, meta["epochs_done"])
    return state, meta["settings"]


def _resume_point(
    catalog: Catalog,
    name: str,
    project: str,
    model: str | dict[str, Any] | None,
    dataset: str | dict[str, Any] | None,
    config: TrainConfig | Mapping[str, Any] | None,
) -> tuple[RunRecord, tuple[CheckpointRecord, TrainState], TrainConfig]:
    """The run, its latest resumable checkpoint with its saved state, and the config to continue with."""
    from lsdb.runs import dataset_spec_json, model_spec_json

    run = catalog.find_run(name, project)
    if run is None:
        raise BadInput(f"run '{name}' does not exist in project '{project}'; nothing to resume")
    for what, given, stored in (("model", model_spec_json(model), run.model_spec),
                                ("dataset", dataset_spec_json(dataset), run.dataset_spec)):
        if given is not None and given != stored:
            raise BadInput(f"run '{name}' was trained with {what} {stored}; --resume continues it with the same {what}")
    resumable = [c for c in catalog.list_checkpoints(run.id) if c.meta and "resume_state" in c.meta]
    if not resumable or run.model_spec is None or run.dataset_spec is None:
        raise BadInput(f"run '{name}' has no saved training state (it was not made by `lsdb train`); nothing to resume")
    latest = max(resumable, key=lambda c: (c.step or 0, c.id))
    digest = latest.meta["resume_state"] if latest.meta else ""
    try:
        state, settings = decode_resume_state(catalog.objects.read_bytes(digest))
    except LsdbError as exc:
        raise LsdbError(f"cannot resume run '{name}' from step {latest.step}: {exc}") from None
    stored = make_config({**_stored_hyperparameters(run), **settings, "loss": run.loss})
    cfg = make_config(config, stored)
    changed = [
        f.name for f in fields(cfg)
        if f.name not in RESUMABLE_CHANGES and f.name != "lr_schedule" and getattr(cfg, f.name) != getattr(stored, f.name)
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


def _stored_hyperparameters(run: RunRecord) -> dict[str, Any]:
    from lsdb.landscape.training import TrainConfig

    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    names = TrainConfig().hyperparameters()
    return {k: types[k](v) for k, v in run.params.items() if k in names}


def _load_weights(catalog: Catalog, net: torch.nn.Module, checkpoint: CheckpointRecord) -> None:
    from safetensors.torch import load

    tensors = load(catalog.objects.read_bytes(checkpoint.blob_digest))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise BadInput(f"checkpoint {checkpoint.id} does not fit the run's model: {first}") from None
