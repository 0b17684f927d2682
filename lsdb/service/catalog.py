"""`Catalog`: lsdb's Python API, the one object the CLI, scripts, the UI and notebooks all call.

Its public methods are the user's verbs (ingest, train, record, run, submit, compare, export,
plot, ...) and nothing else; what workers need (claims, leases, fences, reaping) stays in
`lsdb.catalog.jobs` and `lsdb.jobs`. Each verb validates its input before anything is
written and raises `lsdb.LsdbError` (one line) for what a user can get wrong::

    import lsdb
    cat = lsdb.open_catalog("demo.sqlite")
    cat.train("sb", model="mlp:widths=[64,64]", dataset="digits", epochs=5)
    result = cat.run("surface", "sb:last", xnum=21, ynum=21)
    fig = result.plot(kind="contour")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsdb.config import Settings
from lsdb.errors import BadInput, LsdbError
from lsdb.service.jobs import Job, ProgressFn
from lsdb.service.registry import describe_analysis, list_analyses, list_plugins
from lsdb.service.reports import DoctorReport, RunsPage, WorkerStatus
from lsdb.service.results import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lsdb.analyses.contract import AnalysisSpec, MemoryEstimate
    from lsdb.analyses.view import ResultView
    from lsdb.catalog import CheckpointRecord, MetricRecord, ResultRecord, RunRecord
    from lsdb.catalog.jobs import JobEventRecord, JobRecord
    from lsdb.ingest import IngestOutcome, IngestReport
    from lsdb.maintenance import GcReport
    from lsdb.query.overlay import PlotReport
    from lsdb.query.table import CompareTable
    from lsdb.recorder import Recorder
    from lsdb.registry import PluginInfo, Registries
    from lsdb.training import TrainProgress, TrainResult

#: ``progress(fraction, message)`` of an inline analysis.
AnalysisProgress = Callable[[float, str], None]


class Catalog:
    """A catalog (database + artifact store) and the verbs that work on it; see the module docstring."""

    def __init__(self, settings: Settings, registries: Registries | None = None) -> None:
        """The catalog `settings` name; `registries` are the plugins to use (default: this process')."""
        from lsdb.catalog import CatalogDB
        from lsdb.plugins import resolve

        self.settings = settings
        self._db = CatalogDB(settings)
        self._registries = resolve(registries)

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the database connections (the object is unusable afterwards)."""
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<lsdb.Catalog {self.settings.describe()} store={self.settings.store_root}>"

    def check_writable(self) -> None:
        """Raise `StoreError` unless the artifact store can be written (`lsdb init`)."""
        self._db.objects.check_writable()

    # -- runs and checkpoints -----------------------------------------------------------------------
    def ingest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        run: str,
        *,
        project: str = "default",
        model: str | dict[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        loss: str | None = None,
        step: int | None = None,
        epoch: float | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        recursive: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_file: Callable[[IngestOutcome], None] | None = None,
    ) -> IngestReport:
        """Ingest checkpoint files or trajectory folders into run `project/run` (never runs their code).

        Each file is all-or-nothing; the report says, per file, new / already present / failed.
        With both `model` and `dataset`, tensors that do not fit the model are refused.
        """
        from lsdb.ingest import ingest as run_ingest
        from lsdb.runs import make_new_run, state_dict_check

        new_run = make_new_run(run, project, model=model, dataset=dataset, loss=loss, params=dict(params or {}),
                               tags=dict(tags or {}), registries=self._registries)
        check = None
        if new_run.model_spec is not None and new_run.dataset_spec is not None:
            check = state_dict_check(new_run.model_spec, new_run.dataset_spec, self._registries)
        items = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
        return run_ingest(self._db, items, new_run, step=step, epoch=epoch, recursive=recursive, check=check,
                          on_start=on_start, on_file=on_file, registries=self._registries)

    def train(
        self,
        run: str,
        model: str | dict[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        *,
        project: str = "default",
        device: str = "auto",
        resume: bool = False,
        tags: Mapping[str, str] | None = None,
        progress: Callable[[TrainProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        **config: Any,
    ) -> TrainResult:
        """Train `model` on `dataset` as run `project/run`, checkpointing into the catalog.

        `config` holds training settings (``lr``, ``batch_size``, ``epochs``, ``optimizer``,
        ``momentum``, ``weight_decay``, ``seed``, ``save_every``, ``save_unit``, ``schedule``,
        ``eval_every``, ``random_label_weight``, ``loss``); unknown ones are refused.
        """
        from lsdb.training import train_run

        return train_run(self._db, run, project, model, dataset, config, device=device, resume=resume,
                         tags=tags, progress=progress, should_stop=should_stop, registries=self._registries)

    def record(
        self,
        run: str,
        model: str | dict[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        *,
        project: str = "default",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        loss: str | None = None,
    ) -> AbstractContextManager[Recorder]:
        """Record your own training loop: ``with cat.record(...) as rec: rec.checkpoint(model, step=...)``."""
        from lsdb.recorder import record

        return record(run, model, dataset, project, params, tags, self._db, loss, self._registries)

    def runs(self, project: str | None = None) -> list[RunRecord]:
        """Every run (of `project`) with its specs, parameters, tags and last metrics."""
        return self._db.runs.list(project)

    def get_run(self, run: str | int, project: str | None = None) -> RunRecord:
        """One run by name (or id); `NotFound` otherwise."""
        return self._db.runs.get(run, project)

    def runs_page(self, where: str | None = None, *, sort: str | Sequence[str] | None = None, offset: int = 0,
                  limit: int = 50, project: str | None = None) -> RunsPage:
        """Runs matching `where` (the `compare` grammar), sorted like `compare`, one page at a time.

        The filter and the order come from one `compare` of the ids alone; only the page's runs
        are then read whole (parameters, tags, last metrics, checkpoint count).
        """
        if offset < 0 or limit < 1:
            raise BadInput("offset must be >= 0 and limit >= 1")
        if not where and not sort:  # compare's order (project, name), paged in SQL: fast for 10^4 runs
            total, page = self._db.runs.page(project, offset, limit)
        else:
            table = self.compare(where=where, columns="run_id", sort=sort, project=project)
            ids = [int(row["run_id"]) for row in table.rows]
            total, page = len(ids), ids[offset:offset + limit]
        return RunsPage(total, offset, limit, [self._db.runs.get(i) for i in page])

    def metrics(self, run: str | int, key: str | None = None, project: str | None = None) -> list[MetricRecord]:
        """A run's logged metric values (of one `key`), by key then step."""
        return self._db.metrics.list(self._db.runs.get(run, project).id, key)

    def checkpoints(self, run: str | int | None = None, project: str | None = None,
                    limit: int | None = None) -> list[CheckpointRecord]:
        """Checkpoints by run, then step: a run's trajectory."""
        return self._db.checkpoints.list(run, project, limit)

    def checkpoints_json(self, run: str | int | None = None, project: str | None = None,
                         limit: int | None = None) -> str:
        """`checkpoints` as a JSON array, built without records (fast for 10^5 rows)."""
        from lsdb.service.listing import checkpoints_json

        return checkpoints_json(self._db.checkpoints.list_rows(run, project, limit))

    def checkpoint(self, checkpoint_id: int) -> dict[str, Any]:
        """One checkpoint's record plus its layers (name, dtype, shape) from the stored object."""
        from lsdb.inspection import describe_checkpoint

        return describe_checkpoint(self._db, checkpoint_id)

    # -- analyses -----------------------------------------------------------------------------------
    def analyses(self) -> list[AnalysisSpec]:
        """Every installed analysis, by name."""
        return list_analyses(self._registries)

    def analysis(self, name: str) -> dict[str, Any]:
        """One analysis' inputs and parameters (type, default, help); `BadInput` naming the installed ones."""
        return describe_analysis(name, self._registries)

    def plugins(self) -> list[PluginInfo]:
        """Loaded plugins with version, hooks, analyses and any load error."""
        return list_plugins(self._registries)

    def run(
        self,
        analysis: str,
        *inputs: str | int,
        params: Mapping[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        seed: int = 0,
        dtype: str = "float32",
        device: str = "auto",
        force: bool = False,
        project: str | None = None,
        progress: AnalysisProgress | None = None,
        allow_nonfinite: bool = False,
        **kwparams: Any,
    ) -> Result:
        """Run an analysis now, in this process, and return its stored `Result` (cached when the same
        request was computed before, unless `force`).

        `inputs` are checkpoint ids, ``run:step``, ``run:first``/``run:last``, run names or
        ``role=token``; parameters come as `params` and/or keywords (``xnum=21``). Checkpoints with
        NaN/Inf weights are refused unless `allow_nonfinite`.
        """
        from lsdb.analyses.runner import prepare, run_analysis

        request = self._request(analysis, inputs, params, kwparams, dataset, seed, dtype, project, allow_nonfinite)
        prepared = prepare(self._db, request, self._registries)
        record, computed = run_analysis(self._db, request, device=device, force=force, prepared=prepared,
                                        progress=progress)
        return self._result(record, computed)

    def estimate(
        self,
        analysis: str,
        *inputs: str | int,
        params: Mapping[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        seed: int = 0,
        dtype: str = "float32",
        project: str | None = None,
        allow_nonfinite: bool = False,
        **kwparams: Any,
    ) -> MemoryEstimate:
        """The host memory `run` would need for this request (its parameter copies and its arrays) and
        whether this machine has it, without running anything; the request is validated as `run` does."""
        from lsdb.analyses.contract import estimate_memory
        from lsdb.analyses.runner import footprint, prepare

        request = self._request(analysis, inputs, params, kwparams, dataset, seed, dtype, project, allow_nonfinite)
        prepared = prepare(self._db, request, self._registries)
        return estimate_memory(prepared.spec, prepared.params, footprint(prepared))

    def submit(
        self,
        analysis: str,
        *inputs: str | int,
        params: Mapping[str, Any] | None = None,
        dataset: str | dict[str, Any] | None = None,
        seed: int = 0,
        dtype: str = "float32",
        force: bool = False,
        project: str | None = None,
        queue: str = "default",
        priority: int = 0,
        time_limit: float | None = None,
        max_attempts: int = 3,
        tile_size: int | None = None,
        allow_nonfinite: bool = False,
        **kwparams: Any,
    ) -> Job:
        """Queue an analysis for the workers (`lsdb worker`); a `Job` to follow.

        The request is validated here, before anything is queued. A stored result, or the same
        request already queued or running, is returned instead of a new job. Grids larger than
        `tile_size` points fan out into tile jobs (0: never).
        """
        from lsdb.jobs.submit import DEFAULT_TILE_SIZE, enqueue

        request = self._request(analysis, inputs, params, kwparams, dataset, seed, dtype, project, allow_nonfinite)
        done = enqueue(self._db, request, queue=queue, priority=priority, force=force, max_attempts=max_attempts,
                       time_limit_s=time_limit, tile_size=DEFAULT_TILE_SIZE if tile_size is None else tile_size,
                       registries=self._registries)
        if done.result is not None:
            return Job(self, None, cached=self._result(done.result, False))
        return Job(self, done.job, created=done.created, tiles=done.tiles)

    def job(self, job_id: int) -> Job:
        """A handle on job `job_id`; `NotFound` otherwise."""
        return Job(self, self._db.jobs.get(job_id))

    def jobs(self, status: str | Sequence[str] | None = None, queue: str | None = None,
             limit: int | None = 50, parent: int | None = None) -> list[JobRecord]:
        """The newest `limit` jobs (oldest first), by status and queue, or a fan-out's tiles (`parent`)."""
        return self._db.jobs.list(status=status or None, queue=queue, limit=limit, parent_id=parent)

    def job_events(self, job_id: int) -> list[JobEventRecord]:
        """A job's log: enqueued, claimed, retried, lease_expired, released, succeeded, failed, cancelled."""
        return self._db.jobs.list_events(job_id)

    def cancel_job(self, job_id: int) -> JobRecord:
        """Cancel a job: queued ones at once (with their tiles), running ones at their next progress report.
        A job this call cancels at once fires `job_finished` here, after the commit."""
        job, now_final = self._db.jobs.cancel_now(job_id)
        if now_final:
            from lsdb.jobs.executor import notify_job_finished

            notify_job_finished(job, self._registries)
        return job

    def retry_job(self, job_id: int) -> JobRecord:
        """Requeue a failed or cancelled job with fresh attempts."""
        return self._db.jobs.retry(job_id)

    def workers(self, lease_s: float = 30.0) -> list[WorkerStatus]:
        """Registered workers and whether each is alive."""
        from lsdb.jobs.submit import worker_rows

        return [WorkerStatus(w, alive) for w, alive in worker_rows(self._db, lease_s)]

    def serve(self, **options: Any) -> int:
        """Be a worker: claim and run jobs in this process' child until stopped; the number run.

        Options are `lsdb.jobs.worker.WorkerOptions` fields (``device``, ``queues``, ``once``,
        ``max_jobs``, ``idle_exit_s``, ``threads``, ``lease_s``, ``poll_s``, ...).
        """
        from lsdb.jobs.worker import Worker, WorkerOptions

        try:
            opts = WorkerOptions(**options)
        except TypeError as exc:
            raise BadInput(f"unknown worker option: {exc}") from None
        return Worker(self._db, opts).run()

    def start_workers(self, devices: str = "all", worker_args: Sequence[str] = (), *,
                      max_restarts: int | None = None, backend: str = "local", address: str | None = None,
                      num_workers: int | None = None, gpus_per_worker: float = 1.0) -> int:
        """Start and supervise `lsdb worker` processes: one per GPU (or N CPU ones), or on Ray."""
        if backend == "ray":
            from lsdb.jobs.ray_backend import start_ray_workers

            return start_ray_workers(self.settings, address=address, num_workers=num_workers,
                                     gpus_per_worker=gpus_per_worker, worker_args=worker_args)
        if backend != "local":
            raise BadInput(f"unknown backend '{backend}'; use local or ray")
        from lsdb.jobs.supervisor import supervise

        return supervise(self.settings, devices, list(worker_args), max_restarts=max_restarts)

    # -- results ------------------------------------------------------------------------------------
    def results(self, run: str | int | None = None, analysis: str | None = None,
                project: str | None = None) -> list[Result]:
        """Stored results (with an input of `run`; of `analysis`), oldest first."""
        return [self._result(r) for r in self._db.results.list(run, analysis, project)]

    def result(self, result_id: int, computed: bool = False) -> Result:
        """One stored result; `NotFound` otherwise."""
        return self._result(self._db.results.get(result_id), computed)

    def export(self, result_id: int, format: str = "npz", path: str | Path | None = None) -> Path:
        """Write a result's arrays and scalars as npz, csv or json; the file written."""
        return self.result(result_id).export(format, path)

    def artifact_path(self, result_id: int) -> Path | None:
        """The stored HDF5 file of a result's arrays (read-only; None for a result without arrays)."""
        digest = self._db.results.get(result_id).artifact_digest
        return self._db.objects.path(digest) if digest else None

    def plot(self, result_id: int, kind: str = "default", path: str | Path | None = None) -> Path:
        """Draw a result with its analysis' renderer `kind` into png/svg/pdf `path`; the file written."""
        from lsdb.analyses.exporting import check_plot_path

        target = check_plot_path(Path(path or f"result-{result_id}-{kind}.png"))
        return self.result(result_id).save_plot(target, kind)

    def compare(
        self,
        runs: Sequence[str | int] | None = None,
        *,
        where: str | None = None,
        analysis: str | None = None,
        columns: str | Sequence[str] | None = None,
        sort: str | Sequence[str] | None = None,
        group_by: str | None = None,
        agg: str | Sequence[str] | None = None,
        project: str | None = None,
    ) -> CompareTable:
        """Runs (or one analysis' results) as a table: filtered by the typed `where` grammar, sorted,
        grouped. ``.rows``/``.columns``, ``.to_records()``, ``.to_pandas()`` (when pandas is installed)."""
        return self._db.compare.table(runs or None, where, analysis, columns, sort, group_by, agg, project,
                                      slots=self._slots(analysis))

    def plot_compare(
        self,
        path: str | Path,
        runs: Sequence[str | int] | None = None,
        *,
        x: str | None = None,
        y: str | None = None,
        where: str | None = None,
        analysis: str | None = None,
        project: str | None = None,
        group_by: str | None = None,
        sort: str | Sequence[str] | None = None,
    ) -> PlotReport:
        """Overlay the 1D curves of the results `compare` selects (or plot column `y` against `x`) into `path`."""
        from lsdb.query.overlay import plot_compare

        return plot_compare(_SlottedCompare(self._db.compare, self._slots(analysis)), self._db.results,
                            self._db.objects, path, x=x, y=y, runs=runs or None, where=where, analysis=analysis,
                            project=project, group_by=group_by, sort=sort)

    # -- maintenance --------------------------------------------------------------------------------
    def gc(self, older_than_s: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Remove store objects no row refers to (older than `older_than_s`)."""
        from lsdb.maintenance import gc

        return gc(self._db, older_than_s, dry_run)

    def doctor(self, on_object: Callable[[], None] | None = None) -> DoctorReport:
        """Re-hash every stored object; the missing and corrupt ones."""
        from lsdb.maintenance import doctor

        checked, findings = doctor(self._db, on_object)
        return DoctorReport(checked, findings)

    # -- internals shared with `Job` and `Result` ---------------------------------------------------
    def _request(self, analysis: str, inputs: Sequence[str | int], params: Mapping[str, Any] | None,
                 kwparams: Mapping[str, Any], dataset: str | dict[str, Any] | None, seed: int, dtype: str,
                 project: str | None, allow_nonfinite: bool = False) -> Any:
        from lsdb.analyses.runner import AnalysisRequest

        both = set(params or {}) & set(kwparams)
        if both:
            raise BadInput(f"parameter '{sorted(both)[0]}' is given twice (in params= and as a keyword)")
        return AnalysisRequest(analysis=analysis, inputs=[str(i) for i in inputs],
                               params={**dict(params or {}), **kwparams}, dataset=dataset, seed=seed,
                               project=project, dtype=dtype, allow_nonfinite=allow_nonfinite)

    def _result(self, record: ResultRecord, computed: bool = False) -> Result:
        return Result(record, self._view, self._renderers, computed)

    def _view(self, record: ResultRecord) -> ResultView:
        from lsdb.analyses.runner import load_view

        return load_view(self._db, record)

    def _renderers(self, analysis: str) -> dict[str, Callable[[ResultView], Figure]]:
        return self._registries.renderers.kinds(analysis)

    def interactive_renderers(self, analysis: str) -> dict[str, Callable[[ResultView], dict[str, Any]]]:
        """The interactive (plotly JSON) views plugins registered for `analysis`, by name (`lsdb ui`)."""
        return self._registries.interactive.kinds(analysis)

    def _job_progress(self, job: JobRecord) -> tuple[float, str]:
        from lsdb.jobs.submit import job_progress

        return job_progress(self._db, job)

    def _wait_for_job(self, job_id: int, on_progress: ProgressFn | None, poll_s: float,
                      timeout_s: float | None) -> JobRecord:
        from lsdb.jobs.submit import wait_for_job

        job = wait_for_job(self._db, job_id, on_progress, poll_s, timeout_s)
        if timeout_s is not None and job.status not in ("succeeded", "failed", "cancelled"):
            raise LsdbError(f"job {job_id} is still {job.status} after {timeout_s:g} s")
        return job

    def _slots(self, analysis: str | None) -> list[str]:
        """The analysis' input roles in declared order (a result's row belongs to its first slot's run)."""
        spec = self._registries.analyses.find(analysis) if analysis else None
        return [slot.role for slot in spec.inputs] if spec is not None else []

    def _computed_by(self, job: JobRecord) -> bool:
        return job.result_id is not None and self._db.results.get(job.result_id).job_id == job.id


class _SlottedCompare:
    """The compare repository with the analysis' slot order filled in (what `plot_compare` reads through)."""

    def __init__(self, repo: Any, slots: list[str]) -> None:
        self._repo, self._slots = repo, slots

    def table(self, *args: Any, **kwargs: Any) -> CompareTable:
        return self._repo.table(*args, **kwargs, slots=self._slots)  # type: ignore[no-any-return]


def open_catalog(url: str | None = None, store: str | os.PathLike[str] | None = None) -> Catalog:
    """Open (creating at the current schema if new) the catalog at `url`; see `lsdb.open_catalog`."""
    return Catalog(Settings.resolve(url, store))
