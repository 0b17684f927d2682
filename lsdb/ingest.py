"""Ingest: checkpoint files on disk -> safetensors blobs in the store + rows in the catalog.

One file at a time (memory is bounded by the largest checkpoint, not the total), each
all-or-nothing: the file is read and checked first, its canonical safetensors encoding is
published to the object store, and only then is one transaction committed that creates the
run (if new), the blob row and the checkpoint row. A file that fails leaves nothing behind
but, at worst, an orphan object that `lsdb gc` removes. The same weights ingested twice are
the same checkpoint: the second time reports it as already present.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsdb.catalog import CatalogDB, CheckpointRecord, NewCheckpoint, NewRun
from lsdb.checkpoints import LoadedCheckpoint, canonical_chunks, n_params, read_checkpoint, schema_digest
from lsdb.errors import BadInput, LsdbError
from lsdb.store import ObjectStore

if TYPE_CHECKING:
    from lsdb.checkpoints import CheckpointFormat
    from lsdb.checkpoints.hf_folders import StreamedCheckpoint
    from lsdb.registry import Events, Registries

Status = Literal["new", "existing", "failed"]
_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class IngestOutcome:
    path: str
    status: Status
    checkpoint: CheckpointRecord | None = None
    message: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class IngestReport:
    outcomes: list[IngestOutcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[IngestOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        text = f"{self.count('new')} new, {self.count('existing')} already present, {self.count('failed')} failed"
        nonfinite = sum(1 for o in self.outcomes if o.checkpoint is not None and o.checkpoint.nonfinite)
        return text + (f", {nonfinite} with NaN/Inf weights" if nonfinite else "")


def _name_number(path: Path) -> int | None:
    nums = _NUMBER.findall(path.stem)
    return int(nums[-1]) if nums else None


def _natural_key(path: Path) -> tuple[Any, ...]:
    num = _name_number(path)
    return (num is None, num if num is not None else 0, str(path))


def _folder_model_spec(files: list[Path]) -> dict[str, Any] | None:
    """The ``hf`` model spec of the first Hugging Face model folder among `files` (from its config.json)."""
    from lsdb.models.hf import spec_for_folder

    for path in files:
        if path.is_dir() and (path / "config.json").is_file():
            return spec_for_folder(path)
    return None


def expand_paths(paths: Iterable[str | Path], recursive: bool = False,
                 formats: Iterable[CheckpointFormat] | None = None) -> list[Path]:
    """Files to ingest, in order: each directory's checkpoints sorted by the step in their names.

    Raises `BadInput` for a missing path or a directory without checkpoint files, before
    anything is written. `formats` (default: the built-in ones) decide which suffixes count.
    """
    from lsdb.checkpoints import builtin_formats
    from lsdb.checkpoints.hf_folders import is_model_folder, trainer_checkpoints

    suffixes = {s.lower() for fmt in (formats if formats is not None else builtin_formats()) for s in fmt.suffixes}
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise BadInput(f"{path}: no such file or directory")
        if path.is_dir() and is_model_folder(path):
            files.append(path)  # a Hugging Face model (or adapter) folder is one checkpoint
        elif path.is_dir() and trainer_checkpoints(path):
            files.extend(trainer_checkpoints(path))  # a Trainer output folder: a trajectory by step
        elif path.is_dir():
            found = [
                p
                for p in (path.rglob("*") if recursive else path.iterdir())
                if p.is_file() and p.suffix.lower() in suffixes
            ]
            if not found:
                hint = "" if recursive else " (use --recursive to look in subfolders)"
                raise BadInput(f"{path}: directory holds no checkpoint files ({', '.join(sorted(suffixes))}){hint}")
            files.extend(sorted(found, key=_natural_key))
        else:
            files.append(path)
    return files


def ingest(
    catalog: CatalogDB,
    paths: Iterable[str | Path],
    run: NewRun,
    *,
    step: int | None = None,
    epoch: float | None = None,
    recursive: bool = False,
    check: Callable[[dict[str, Any]], None] | None = None,
    on_file: Callable[[IngestOutcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    registries: Registries | None = None,
) -> IngestReport:
    """Ingest checkpoint files into `run` (created if new).

    `check(tensors)` may raise `BadInput` to refuse a file (e.g. tensors that do not fit the
    run's model). `on_start(n_files)` and `on_file(outcome)` drive a progress bar. The
    checkpoint formats and the `checkpoint_ingested` listeners come from `registries`.
    """
    from lsdb.plugins import resolve

    registries = resolve(registries)
    formats = registries.formats.values()
    files = expand_paths(paths, recursive, formats)
    if (step is not None or epoch is not None) and len(files) > 1:
        raise BadInput("--step/--epoch apply to a single file; a directory's steps come from file names or metadata")
    if run.model_spec is None and (spec := _folder_model_spec(files)) is not None:
        run = dataclasses.replace(run, model_spec=spec)  # recorded from config.json
    catalog.db.check_writable()  # before the store: a read-only catalog would leave orphan objects
    catalog.objects.check_writable()
    if on_start:
        on_start(len(files))
    report = IngestReport()
    schemas = _run_schemas(catalog, run)
    logged: list[int] = [-1]  # the last Trainer step whose logged metrics are in the catalog
    for path in files:
        try:
            if path.is_dir():
                outcome, schema = _ingest_folder(catalog, path, run, step, epoch, check, registries.events, logged)
            else:
                outcome, schema = _ingest_one(catalog, path, run, step, epoch, check, formats, registries.events)
            if schemas and schema not in schemas:
                note = f"schema differs from the run's other checkpoints (schema {schema[:12]})"
                outcome = IngestOutcome(
                    outcome.path, outcome.status, outcome.checkpoint, outcome.message, (*outcome.notes, note)
                )
            schemas.add(schema)
        except LsdbError as exc:
            outcome = IngestOutcome(str(path), "failed", message=str(exc))
        report.outcomes.append(outcome)
        if on_file:
            on_file(outcome)
    return report


def _run_schemas(catalog: CatalogDB, run: NewRun) -> set[str]:
    found = catalog.runs.find(run.name, run.project)
    return catalog.checkpoints.schema_digests(found.id) if found else set()


def add_tensors(
    catalog: CatalogDB,
    run: NewRun | int,
    tensors: dict[str, Any],
    *,
    step: int | None = None,
    epoch: float | None = None,
    label: str | None = None,
    source_path: str | None = None,
    meta: dict[str, Any] | None = None,
    produced_by: int | None = None,
    events: Events | None = None,
) -> tuple[CheckpointRecord, bool]:
    """Store a state dict as a checkpoint of `run` (a new or existing run, or an existing run's id):
    publish its blob, then commit its rows.

    The one path by which weights enter the catalog (ingest, training, the record API and
    analyses that make checkpoints all use it; training commits the rows of `publish_tensors`
    in batches). Returns (record, created).
    """
    new = publish_tensors(catalog.objects, tensors, step=step, epoch=epoch, label=label, source_path=source_path,
                          meta=meta, produced_by=produced_by)
    record, created = catalog.checkpoints.add(run, new)
    confirm_object(catalog.objects, new.blob_digest, lambda: canonical_chunks(tensors))
    if created:
        announce(record, events)
    return record, created


def confirm_object(objects: ObjectStore, digest: str, chunks: Callable[[], Sequence[Any]]) -> None:
    """After committing a row that refers to `digest`: write the object again if a concurrent
    `lsdb gc` moved it aside before the row was visible (gc re-checks references only after
    moving an object away, so a row committed before that check keeps its object, and one
    committed after it finds the object absent here)."""
    if not objects.exists(digest):
        objects.put_chunks(chunks(), digest)


def publish_tensors(
    objects: ObjectStore,
    tensors: dict[str, Any],
    *,
    step: int | None = None,
    epoch: float | None = None,
    label: str | None = None,
    source_path: str | None = None,
    meta: dict[str, Any] | None = None,
    produced_by: int | None = None,
) -> NewCheckpoint:
    """Publish a state dict's canonical blob (durably) to `objects` and describe the checkpoint row to commit.

    The one way checkpoint weights are published: ingest, training, the record API and the runner
    (for the checkpoints an analysis produces) all call it."""
    # one pass: the canonical safetensors bytes are hashed as they are written, and their
    # digest *is* the tensor digest (docs/architecture.md, "The store"), so the weights are hashed exactly once
    blob = objects.put_chunks(canonical_chunks(tensors))
    return NewCheckpoint(
        tensor_digest=blob.digest,
        schema_digest=schema_digest(tensors),
        n_params=n_params(tensors),
        n_tensors=len(tensors),
        blob_digest=blob.digest,
        blob_size=blob.size,
        blob_path=blob.relpath,
        step=step,
        epoch=epoch,
        label=label,
        source_path=source_path,
        meta=meta,
        produced_by=produced_by,
        nonfinite=has_nonfinite(tensors),
    )


def has_nonfinite(tensors: dict[str, Any]) -> bool:
    """Whether some floating-point weight is NaN or infinite."""
    import torch

    return any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors.values())


def announce(record: CheckpointRecord, events: Events | None = None) -> None:
    """Fire `checkpoint_ingested` for a new checkpoint (a failing listener never undoes the ingest)."""
    from lsdb.plugins import resolve

    (events if events is not None else resolve(None).events).checkpoint_ingested(record)


def _ingest_one(
    catalog: CatalogDB,
    path: Path,
    run: NewRun,
    step: int | None,
    epoch: float | None,
    check: Callable[[dict[str, Any]], None] | None,
    formats: Iterable[CheckpointFormat],
    events: Events,
) -> tuple[IngestOutcome, str]:
    loaded = read_checkpoint(path, formats)
    if check is not None:
        try:
            check(loaded.tensors)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None
    file_step = step if step is not None else loaded.step
    file_epoch = epoch if epoch is not None else loaded.epoch
    if file_step is None and file_epoch is None:
        num = _name_number(path)
        if num is not None:
            if "epoch" in path.stem.lower():
                file_epoch = float(num)
            else:
                file_step = num
    meta: dict[str, Any] = {}
    if loaded.metrics:
        meta["metrics"] = loaded.metrics
    if loaded.notes:
        meta["notes"] = list(loaded.notes)
    record, created = add_tensors(
        catalog,
        run,
        loaded.tensors,
        step=file_step,
        epoch=file_epoch,
        source_path=str(path.resolve()),
        meta=meta or None,
        events=events,
    )
    schema = record.schema_digest
    if loaded.metrics and created:
        metric_step = file_step if file_step is not None else int(file_epoch or 0)
        catalog.metrics.add(record.run_id, [(k, metric_step, v) for k, v in loaded.metrics.items()])
    status: Status = "new" if created else "existing"
    message = f"checkpoint {record.id}" if created else f"already present as checkpoint {record.id}"
    notes = tuple(loaded.notes)
    if record.nonfinite:
        notes = (*notes, "has NaN or Inf weights: analyses refuse it unless --allow-nonfinite")
    return IngestOutcome(str(path), status, record, message, notes), schema


def publish_streamed(objects: ObjectStore, streamed: StreamedCheckpoint, **row: Any) -> NewCheckpoint:
    """`publish_tensors` for a checkpoint read lazily (`lsdb.checkpoints.hf_folders`): its canonical bytes
    are copied tensor by tensor into the store, never all in memory, and checked for NaN/Inf as they pass."""
    streamed.nonfinite.clear()
    blob = objects.put_stream(streamed.chunks())
    tensors: Any = streamed.tensors  # TensorMeta: dtype, shape, numel, is_floating_point
    return NewCheckpoint(tensor_digest=blob.digest, schema_digest=schema_digest(tensors), n_params=n_params(tensors),
                         n_tensors=len(streamed.tensors), blob_digest=blob.digest, blob_size=blob.size,
                         blob_path=blob.relpath, nonfinite=bool(streamed.nonfinite), **row)


def _ingest_folder(
    catalog: CatalogDB,
    path: Path,
    run: NewRun,
    step: int | None,
    epoch: float | None,
    check: Callable[[dict[str, Any]], None] | None,
    events: Events,
    logged: list[int],
) -> tuple[IngestOutcome, str]:
    """A Hugging Face model, Trainer checkpoint or LoRA adapter folder: one checkpoint (plus the adapter)."""
    from lsdb.checkpoints.hf_folders import (
        ADAPTER_CONFIG,
        CONFIG,
        StreamedCheckpoint,
        merge_adapter,
        read_model_folder,
        trainer_state,
    )

    adapter = (path / ADAPTER_CONFIG).is_file() and not (path / CONFIG).is_file()
    adapter_tensors: dict[str, Any] | None = None
    if adapter:
        merged, adapter_tensors, notes = merge_adapter(path)
        loaded: Any = LoadedCheckpoint(merged, None, None, {}, notes)
        history: list[dict[str, Any]] = trainer_state(path)[3]
    else:
        loaded = read_model_folder(path)
        history = loaded.log_history if isinstance(loaded, StreamedCheckpoint) else trainer_state(path)[3]
    if check is not None:
        try:
            check(loaded.tensors)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None
    file_step = step if step is not None else loaded.step
    if file_step is None:
        file_step = _name_number(path)
    file_epoch = epoch if epoch is not None else loaded.epoch
    meta: dict[str, Any] = {"format": "hf-adapter-merged" if adapter else "hf-folder"}
    if loaded.metrics:
        meta["metrics"] = loaded.metrics
    if loaded.notes:
        meta["notes"] = list(loaded.notes)
    row: dict[str, Any] = {"step": file_step, "epoch": file_epoch, "source_path": str(path.resolve()), "meta": meta}
    if isinstance(loaded, StreamedCheckpoint):
        new = publish_streamed(catalog.objects, loaded, label=None, produced_by=None, **row)
        record, created = catalog.checkpoints.add(run, new)
        if created:
            announce(record, events)
    else:
        record, created = add_tensors(catalog, run, loaded.tensors, label="merged" if adapter else None,
                                      events=events, **row)
    if adapter and adapter_tensors is not None:
        from lsdb.checkpoints.hf_folders import adapter_base

        add_tensors(catalog, record.run_id, adapter_tensors, label="adapter", source_path=str(path.resolve()),
                    meta={"format": "peft-lora-adapter", "base_model": str(adapter_base(path)),
                          "merged_checkpoint": record.id}, events=events)
    top = file_step if file_step is not None else 0
    items = [(k, int(h["step"]), float(v)) for h in history if isinstance(h.get("step"), int)
             and logged[0] < h["step"] <= top for k, v in h.items()
             if k not in ("step", "epoch") and isinstance(v, int | float) and not isinstance(v, bool)]
    if items and created:
        catalog.metrics.add(record.run_id, items)
    logged[0] = max(logged[0], top)
    status: Status = "new" if created else "existing"
    message = f"checkpoint {record.id}" if created else f"already present as checkpoint {record.id}"
    said = tuple(loaded.notes)
    if record.nonfinite:
        where = loaded.nonfinite if isinstance(loaded, StreamedCheckpoint) else []
        first = f" (tensor {where[0]}" + (f" and {len(where) - 1} more)" if len(where) > 1 else ")") if where else ""
        said = (*said, f"has NaN or Inf weights{first}: analyses refuse it unless --allow-nonfinite")
    return IngestOutcome(str(path), status, record, message, said), record.schema_digest
