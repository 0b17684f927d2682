"""The runner: one function that turns a request into a stored result (inline or in a worker).

1. Resolve the analysis, its inputs and its parameters (all errors before any work).
2. Compute the cache key: sha256 of canonical JSON {analysis, version, input tensor digests,
   params with defaults filled, dataset spec, seed}. An existing result is returned at once
   unless `force`.
3. Run the analysis (no transaction open; progress and cancellation through the context; an
   alignment it asks for is looked up or stored as an `align` result of its own,
   `lsdb.analyses.alignment_cache`).
4. Publish the HDF5 artifact and any new checkpoints' blobs to the store, then commit the
   result, its inputs, params, scalars, array index and new checkpoints in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from lsdb.analyses.contract import AnalysisOutput, AnalysisSpec, Footprint, params_to_dict, parse_params
from lsdb.analyses.inputs import resolve_inputs
from lsdb.catalog import CatalogDB, CheckpointRecord, NewCheckpoint, NewResult, NewRun, ResultRecord
from lsdb.errors import BadInput
from lsdb.registry import Registries

DTYPES = ("float32", "float64", "bfloat16", "float16")


class CommitResult(Protocol):
    """How `store_output` commits a result: `ResultRepository.add`, or a worker's fenced commit
    (`lsdb.jobs.executor.FencedCommit`), which also marks the job succeeded in the same transaction."""

    def __call__(
        self, new: NewResult, produced: Sequence[tuple[NewRun, NewCheckpoint]], replace: bool
    ) -> tuple[ResultRecord, bool]: ...


@dataclass(frozen=True)
class AnalysisRequest:
    """What a user asks for; JSON-serializable so a job can carry it."""

    analysis: str
    inputs: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    dataset: str | dict[str, Any] | None = None
    seed: int = 0
    project: str | None = None
    dtype: str = "float32"
    #: compute on checkpoints with NaN/Inf weights (refused otherwise); not part of the cache key
    allow_nonfinite: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            **({"allow_nonfinite": True} if self.allow_nonfinite else {}),
            "analysis": self.analysis,
            "inputs": list(self.inputs),
            "params": dict(self.params),
            "dataset": self.dataset,
            "seed": self.seed,
            "project": self.project,
            "dtype": self.dtype,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnalysisRequest:
        return cls(**data)


@dataclass(frozen=True)
class Prepared:
    """A validated request: everything needed to run it and to find its cached result."""

    request: AnalysisRequest
    spec: AnalysisSpec
    inputs: dict[str, list[CheckpointRecord]]
    params: Any
    params_dict: dict[str, Any]
    model_spec: dict[str, Any] | None
    dataset_spec: dict[str, Any] | None
    loss: str
    cache_key: str
    registries: Registries
    #: what `cache_key` hashes (without the params): a tile's key is this with the tile's params
    key_doc: dict[str, Any] = field(default_factory=dict)

    def with_params(self, overrides: dict[str, Any]) -> tuple[AnalysisRequest, str]:
        """The request with `overrides` on its params and its cache key, validated like `prepare`
        but without resolving the inputs, runs and dataset again (the tiles of a fan-out)."""
        request = replace(self.request, params={**self.request.params, **overrides})
        params_dict = params_to_dict(parse_params(self.spec, request.params))
        doc = {**self.key_doc, "params": params_dict}
        return request, hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def prepare(catalog: CatalogDB, request: AnalysisRequest, registries: Registries | None = None) -> Prepared:
    """Validate a request (inputs, params, schemas, dataset) and compute its cache key.

    `registries` are the loaded plugins' (this process' when not given).
    """
    from lsdb.plugins import resolve
    from lsdb.runs import dataset_spec_json

    registries = resolve(registries)
    spec = registries.analyses.get(request.analysis)
    if request.dtype not in DTYPES:
        raise BadInput(f"unknown dtype '{request.dtype}'; available: {', '.join(DTYPES)}")
    params = parse_params(spec, request.params)
    params_dict = params_to_dict(params)
    inputs = resolve_inputs(catalog, spec, list(request.inputs), request.project)
    flat = [c for role in inputs.values() for c in role]
    bad = next((c for c in flat if c.nonfinite), None)
    if bad is not None and not request.allow_nonfinite:
        raise BadInput(f"checkpoint {bad.id} ({bad.run}, step {bad.step}) has NaN or Inf weights; "
                       "pass --allow-nonfinite (allow_nonfinite=True) to compute on it anyway")
    if spec.same_schema and len({c.schema_digest for c in flat}) > 1:
        raise BadInput(_schema_message(catalog, flat))
    first = flat[0] if flat else None
    run = catalog.runs.get(first.run_id) if first else None
    model_spec = run.model_spec if run else None
    dataset_spec = (
        dataset_spec_json(request.dataset, registries) if request.dataset is not None
        else (run.dataset_spec if run else None)
    )
    if spec.needs_data and flat and dataset_spec is None:
        raise BadInput(
            f"run '{first.run if first else ''}' has no dataset spec; pass --dataset SPEC (e.g. --dataset digits)"
        )
    if spec.needs_data and flat and model_spec is None:
        raise BadInput(f"run '{first.run if first else ''}' has no model spec; re-ingest with --model SPEC")
    key_doc: dict[str, Any] = {
        "analysis": spec.name,
        "version": spec.version,
        "inputs": {role: [c.tensor_digest for c in ckpts] for role, ckpts in inputs.items()},
        "params": params_dict,
        "dataset": dataset_spec,
        "seed": request.seed,
    }
    if request.dtype != "float32":
        key_doc["dtype"] = request.dtype
    if spec.needs_data and model_spec is not None:
        key_doc["model"] = model_spec
    cache_key = hashlib.sha256(json.dumps(key_doc, sort_keys=True, default=str).encode()).hexdigest()
    return Prepared(
        request,
        spec,
        inputs,
        params,
        params_dict,
        model_spec,
        dataset_spec,
        run.loss if run else "cross_entropy",
        cache_key,
        registries,
        key_doc,
    )


def _schema_message(catalog: CatalogDB, ckpts: list[CheckpointRecord]) -> str:
    from lsdb.inspection import safetensors_header

    base = ckpts[0]
    other = next(c for c in ckpts if c.schema_digest != base.schema_digest)
    a = safetensors_header(str(catalog.objects.path(base.blob_digest)))
    b = safetensors_header(str(catalog.objects.path(other.blob_digest)))
    differ = sorted(
        k
        for k in set(a) | set(b)
        if k not in a or k not in b or a[k]["shape"] != b[k]["shape"] or a[k]["dtype"] != b[k]["dtype"]
    )
    shown = ", ".join(differ[:5]) + (f" (+{len(differ) - 5} more)" if len(differ) > 5 else "")
    return (
        f"checkpoints {base.id} and {other.id} have different schemas (layers that differ: {shown}); "
        "this analysis needs checkpoints of the same architecture"
    )


def run_analysis(
    catalog: CatalogDB,
    request: AnalysisRequest,
    *,
    device: str | None = "auto",
    force: bool = False,
    progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    job_id: int | None = None,
    prepared: Prepared | None = None,
    registries: Registries | None = None,
) -> tuple[ResultRecord, bool]:
    """Run (or fetch from cache) one analysis; returns (result, computed_now)."""
    prepared = prepared or prepare(catalog, request, registries)
    if not force:
        cached = catalog.results.find(prepared.cache_key)
        if cached is not None:
            return cached, False
    catalog.db.check_writable()  # before any work: a read-only catalog could not store it
    output, wall, dev = compute(catalog, prepared, device=device, progress=progress, should_cancel=should_cancel)
    record, created = store_output(
        catalog, prepared, output, wall_seconds=wall, device=str(dev), job_id=job_id, replace=force
    )
    return record, created


def compute(
    catalog: CatalogDB,
    prepared: Prepared,
    *,
    device: str | None = "auto",
    progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[AnalysisOutput, float, Any]:
    """Run the analysis itself (no catalog writes); (output, wall seconds, device). A request whose
    declared memory exceeds what the machine has fails first, with a one-line `BadInput`."""
    import torch

    from lsdb.analyses.contract import check_memory

    check_memory(prepared.spec, prepared.params, footprint(prepared))

    from lsdb.analyses.alignment_cache import CatalogAlignments
    from lsdb.analyses.context import Context
    from lsdb.devices import resolve_device

    dev = torch.device(resolve_device(device))
    runs = {c.run_id: catalog.runs.get(c.run_id) for ckpts in prepared.inputs.values() for c in ckpts}
    inputs = {
        role: [_input_checkpoint(catalog, c, runs[c.run_id]) for c in ckpts] for role, ckpts in prepared.inputs.items()
    }
    ctx = Context(
        device=dev,
        seed=prepared.request.seed,
        dtype=getattr(torch, prepared.request.dtype),
        model_spec=prepared.model_spec,
        dataset_spec=prepared.dataset_spec,
        loss=prepared.loss,
        progress_callback=progress,
        cancel_check=should_cancel,
        registries=prepared.registries,
        alignments=CatalogAlignments(catalog, prepared.registries, prepared.request.seed, prepared.dataset_spec,
                                     prepared.request.dtype, prepared.request.project,
                                     prepared.request.allow_nonfinite),
    )
    t0 = time.perf_counter()
    output = prepared.spec.run(ctx, inputs, prepared.params)
    wall = time.perf_counter() - t0
    if not isinstance(output, AnalysisOutput):
        raise TypeError(f"analysis '{prepared.spec.name}' returned {type(output).__name__}, not AnalysisOutput")
    if progress:
        progress(1.0, "done")
    return output, wall, dev


def footprint(prepared: Prepared) -> Footprint:
    """One parameter copy of the request's largest input in its dtype, and how many inputs it names."""
    import torch

    checkpoints = [c for ckpts in prepared.inputs.values() for c in ckpts]
    itemsize = getattr(torch, prepared.request.dtype).itemsize
    return Footprint(max((c.n_params for c in checkpoints), default=0) * itemsize, len(checkpoints))


def _input_checkpoint(catalog: CatalogDB, rec: CheckpointRecord, run: Any) -> Any:
    from lsdb.analyses.context import InputCheckpoint

    def load() -> dict[str, Any]:
        from safetensors.torch import load

        # read once, hashed and decoded from the same bytes: nothing is computed on a corrupt object;
        # in name order, the order of the canonical file (decoding bytes does not keep it)
        return dict(sorted(load(catalog.objects.read_verified(rec.blob_digest)).items()))

    return InputCheckpoint(
        id=rec.id,
        run=rec.run,
        project=rec.project,
        step=rec.step,
        epoch=rec.epoch,
        label=rec.label,
        tensor_digest=rec.tensor_digest,
        schema_digest=rec.schema_digest,
        model_spec=run.model_spec,
        dataset_spec=run.dataset_spec,
        loss=run.loss,
        _loader=load,
    )


def store_output(
    catalog: CatalogDB,
    prepared: Prepared,
    output: AnalysisOutput,
    *,
    wall_seconds: float | None = None,
    device: str | None = None,
    job_id: int | None = None,
    replace: bool = False,
    commit: CommitResult | None = None,
) -> tuple[ResultRecord, bool]:
    """Publish the artifact and new checkpoints' blobs, then commit everything in one transaction
    with `commit` (default: `catalog.results.add`; a worker passes its fenced commit)."""
    import numpy as np
    import torch

    from lsdb.store import write_artifact

    spec = prepared.spec
    arrays = {
        k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
        for k, v in output.arrays.items()
    }
    for key, value in output.scalars.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"analysis '{spec.name}': scalar '{key}' is {type(value).__name__}, not a number")
    inputs_attr = {role: [c.tensor_digest for c in ckpts] for role, ckpts in prepared.inputs.items()}
    attrs = {
        **output.attrs,
        "analysis": spec.name,
        "analysis_version": spec.version,
        "params": prepared.params_dict,
        "inputs": inputs_attr,
        "input_checkpoints": {role: [c.id for c in ckpts] for role, ckpts in prepared.inputs.items()},
        "dataset": prepared.dataset_spec,
        "model": prepared.model_spec,
        "seed": prepared.request.seed,
        "cache_key": prepared.cache_key,
        "scalars": {k: float(v) for k, v in output.scalars.items()},
    }
    catalog.objects.check_writable()
    fd, tmp = tempfile.mkstemp(prefix="lsdb-artifact-", suffix=".h5")
    os.close(fd)
    try:
        write_artifact(Path(tmp), arrays, attrs)
        blob = catalog.objects.put_file(Path(tmp))
        return _commit_output(catalog, prepared, output, arrays, blob, Path(tmp), wall_seconds=wall_seconds,
                              device=device, job_id=job_id, replace=replace, commit=commit)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _commit_output(
    catalog: CatalogDB,
    prepared: Prepared,
    output: AnalysisOutput,
    arrays: dict[str, Any],
    blob: Any,
    artifact: Path,
    *,
    wall_seconds: float | None,
    device: str | None,
    job_id: int | None,
    replace: bool,
    commit: CommitResult | None,
) -> tuple[ResultRecord, bool]:
    import torch

    from lsdb._version import __version__
    from lsdb.checkpoints import canonical_chunks
    from lsdb.ingest import confirm_object, publish_tensors

    spec = prepared.spec
    first = next((c for ckpts in prepared.inputs.values() for c in ckpts), None)
    produced: list[tuple[NewRun, NewCheckpoint]] = []
    produced_tensors: list[dict[str, Any]] = []
    for new in output.checkpoints:
        tensors = {k: v.detach().cpu().contiguous() for k, v in new.tensors.items()}
        run_name = new.run or (first.run if first else f"{spec.name}-outputs")
        project = first.project if first else (prepared.request.project or "default")
        run = NewRun(run_name, project, model_spec=prepared.model_spec, dataset_spec=None)
        produced.append((run, publish_tensors(catalog.objects, tensors, step=new.step, label=new.label)))
        produced_tensors.append(tensors)
    commit = commit or catalog.results.add
    record, created = commit(
        NewResult(
            analysis=spec.name,
            analysis_version=spec.version,
            cache_key=prepared.cache_key,
            params=prepared.params_dict,
            scalars={k: float(v) for k, v in output.scalars.items()},
            inputs=[(role, i, c.id) for role, ckpts in prepared.inputs.items() for i, c in enumerate(ckpts)],
            arrays={k: (str(v.dtype), list(v.shape)) for k, v in arrays.items()},
            artifact_digest=blob.digest,
            artifact_size=blob.size,
            artifact_path=blob.relpath,
            lsdb_version=__version__,
            dataset_spec=prepared.dataset_spec,
            device=device,
            seed=prepared.request.seed,
            wall_seconds=wall_seconds,
            job_id=job_id,
            plugin_name=spec.plugin or None,
            plugin_version=prepared.registries.plugin_version(spec.plugin),
            torch_version=torch.__version__,
        ),
        produced,
        replace,
    )
    # a concurrent `lsdb gc` may have moved an object aside before the rows were visible
    if not catalog.objects.exists(blob.digest):
        catalog.objects.put_file(artifact, blob.digest)
    for (_, ckpt), tensors in zip(produced, produced_tensors, strict=True):
        confirm_object(catalog.objects, ckpt.blob_digest, lambda t=tensors: canonical_chunks(t))  # type: ignore[misc]
    if created:
        prepared.registries.events.result_stored(record)  # a failing listener never undoes the commit
    return record, created


def load_view(catalog: CatalogDB, result: ResultRecord, *, verify: bool = False) -> Any:
    """A `ResultView` of a stored result (arrays read from its HDF5 artifact; with `verify`, as
    for a merge that computes on them, the artifact's digest is checked on the bytes read)."""
    from lsdb.analyses.view import ResultView
    from lsdb.errors import StoreError
    from lsdb.store import read_artifact

    arrays: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    if result.artifact_digest:
        path = catalog.objects.path(result.artifact_digest)
        if not path.exists():
            raise StoreError(
                f"result {result.id}: its artifact {result.artifact_digest[:12]} is missing; run `lsdb doctor`"
            )
        arrays, attrs = read_artifact(catalog.objects.read_verified(result.artifact_digest) if verify else path)
    inputs = [
        {
            "role": i.role,
            "position": i.position,
            "checkpoint": i.checkpoint_id,
            "run": i.run,
            "project": i.project,
            "step": i.step,
            "epoch": i.epoch,
        }
        for i in result.inputs
    ]
    return ResultView(result.id, result.analysis, result.params, result.scalars, arrays, inputs, attrs)
