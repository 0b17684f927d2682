"""`lsdb run`, `lsdb analyses [show]`, `lsdb plugins`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from lsdb.cli.render import Format, render, render_mapping
from lsdb.cli.state import state
from lsdb.errors import BadInput

if TYPE_CHECKING:
    from lsdb.service import Job, MemoryEstimate, Result

analyses_app = typer.Typer(help="List the analyses plugins provide, or show one.", invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.add_typer(analyses_app, name="analyses")
    app.command("plugins")(plugins)


def parse_params(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise BadInput(f"-p '{item}' is not key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def run(
    ctx: typer.Context,
    analysis: str = typer.Argument(..., help="Analysis name (see `lsdb analyses`)."),
    inputs: list[str] = typer.Argument(None, help="Checkpoint ids, run:step, run:last, run names, or role=token."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value, repeatable."),
    inline: bool = typer.Option(False, "--inline", help="Run now in this process instead of enqueuing a job."),
    wait: bool = typer.Option(False, "--wait", help="Enqueue, then follow the job until it finishes."),
    force: bool = typer.Option(False, "--force", help="Recompute even if the result is cached."),
    dataset: str = typer.Option(None, "--dataset", help="Evaluate on this dataset spec instead of the run's."),
    seed: int = typer.Option(0, "--seed"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | float64 | bfloat16 | float16"),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | cuda:N | auto"),
    project: str = typer.Option(None, "--project"),
    queue: str = typer.Option("default", "--queue", help="Job queue (without --inline)."),
    priority: int = typer.Option(0, "--priority"),
    time_limit: float = typer.Option(None, "--time-limit", help="Seconds a job may run (without --inline)."),
    max_attempts: int = typer.Option(3, "--max-attempts", help="Tries before a job is failed."),
    tile_size: int = typer.Option(None, "--tile-size", help="Grid points per tile job when fanning out (0: never)."),
    allow_nonfinite: bool = typer.Option(False, "--allow-nonfinite",
                                         help="Compute on checkpoints with NaN/Inf weights (refused otherwise)."),
    estimate: bool = typer.Option(False, "--estimate", help="Only print the memory the request needs and whether "
                                  "this machine has it (exit 1 when not); run nothing."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Run an analysis: inline now (--inline), or as a job for the workers."""
    params = parse_params(param)
    catalog = state(ctx).catalog()
    if estimate:
        need = catalog.estimate(analysis, *(inputs or []), params=params, dataset=dataset, seed=seed, dtype=dtype,
                                project=project, allow_nonfinite=allow_nonfinite)
        _show_estimate(need, format)
        return
    if not inline:
        job = catalog.submit(
            analysis, *(inputs or []), params=params, dataset=dataset, seed=seed, dtype=dtype, force=force,
            project=project, queue=queue, priority=priority, time_limit=time_limit, max_attempts=max_attempts,
            tile_size=tile_size, allow_nonfinite=allow_nonfinite,
        )
        _show_job(job, wait, format)
        return
    with _progress(analysis, format) as update:
        result = catalog.run(
            analysis, *(inputs or []), params=params, dataset=dataset, seed=seed, dtype=dtype, device=device,
            force=force, project=project, progress=update, allow_nonfinite=allow_nonfinite,
        )
    show_result_summary(result, format)


def _show_estimate(need: MemoryEstimate, fmt: Format) -> None:
    """The estimate as one line (table) or its JSON; exit 1 when it does not fit."""
    if fmt is Format.json:
        render_mapping(need.to_dict(), fmt)
    else:
        have = "unknown" if need.available is None else f"{need.available / 2**30:.3g} GiB"
        verdict = "fits" if need.fits else "does NOT fit (set LSDB_MAX_MEMORY to plan for another machine)"
        typer.echo(f"{need.analysis} needs {need.describe()}; this machine has {have} available: {verdict}")
    if not need.fits:
        raise typer.Exit(1)


@contextmanager
def _progress(label: str, fmt: Format) -> Iterator[Callable[[float, str], None]]:
    """``update(fraction, message)`` of a transient bar (for tables only), shown from the first update
    on, so a request refused before any work starts prints nothing but its error."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(label), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), transient=True, disable=fmt is not Format.table)
    task = bar.add_task("", total=1.0)
    started = False

    def update(fraction: float, message: str) -> None:
        nonlocal started
        if not started:
            bar.start()
            started = True
        bar.update(task, completed=fraction, description=message)

    try:
        yield update
    finally:
        if started:
            bar.stop()


def _show_job(job: Job, wait: bool, fmt: Format) -> None:
    """What `submit` did (queued, found the same request queued or running, or found its result),
    and with `wait` follow the job with a progress bar and show its result."""
    if job.cached is not None:
        show_result_summary(job.cached, fmt)
        return
    record = job.record
    assert record is not None
    if fmt is Format.table:
        what = f"queued on '{record.queue}'" if job.created else f"is already {record.status} (the same request)"
        typer.echo(f"job {record.id} {what}" + (f" as {job.tiles} tiles" if job.tiles else ""), err=wait)
        if not wait:
            typer.echo(f"follow it: `lsdb jobs show {record.id}`; workers run it: `lsdb worker`", err=True)
    elif not wait:
        row = {"job": record.id, "status": record.status, "created": job.created, "tiles": job.tiles,
               "analysis": record.analysis, "queue": record.queue}
        render([row], fmt, list(row))
    if not wait:
        return
    try:
        with _progress(f"job {record.id}", fmt) as update:
            result = job.wait(on_progress=lambda j, f, msg: update(f, f"{j.status}: {msg}"))
    except KeyboardInterrupt:
        sys.stderr.write(f"stopped following job {record.id}; it goes on (`lsdb jobs cancel {record.id}` stops it)\n")
        raise typer.Exit(130) from None
    show_result_summary(result, fmt)


def show_result_summary(result: Result, format: Format) -> None:
    """A result's scalars (a table, or its JSON with ``computed``) and, for tables, where to go next."""
    if format is Format.json:
        render_mapping(result.to_dict(), format)
        return
    rows = [{"scalar": k, "value": v} for k, v in sorted(result.scalars.items())]
    render(rows, format, ["scalar", "value"], title=f"result {result.id} ({result.analysis})")
    if format is Format.table:
        seconds = result.wall_seconds
        how = f"computed in {seconds:.2f} s" if result.computed and seconds else "cached"
        typer.echo(f"result {result.id}: {how}; `lsdb results show {result.id}`, `lsdb plot {result.id}`", err=True)


@analyses_app.callback()
def analyses(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format")) -> None:
    """List analyses with their inputs and plugin."""
    if ctx.invoked_subcommand is not None:
        return
    from lsdb.service import list_analyses

    rows = [
        {
            "analysis": spec.name,
            "version": spec.version,
            "plugin": spec.plugin,
            "inputs": ", ".join(
                f"{s.role}" + ("" if s.min == s.max == 1 else f"[{s.min}..{s.max or ''}]") for s in spec.inputs
            ),
            "summary": spec.summary,
        }
        for spec in list_analyses()
    ]
    render(rows, format, ["analysis", "version", "plugin", "inputs", "summary"])


@analyses_app.command("show")
def analyses_show(name: str, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Inputs, parameters (type, default, help) and documentation of one analysis."""
    from lsdb.service import describe_analysis

    info = describe_analysis(name)
    if format is Format.json:
        render_mapping(info, format)
        return
    typer.echo(f"{info['name']} (version {info['version']}, plugin {info['plugin']}, resources {info['resources']})\n")
    typer.echo((info["description"] or "").strip() + "\n")
    render(info["inputs"], format, ["role", "kind", "min", "max", "help"], title="inputs")
    render(info["params"], format, ["name", "type", "default", "choices", "help"], title="parameters")


def plugins(format: Format = typer.Option(Format.table, "--format")) -> None:
    """Loaded plugins: version, hooks, analyses and any load error."""
    from lsdb.service import list_plugins

    rows: list[dict[str, Any]] = [
        {
            "plugin": p.name,
            "version": p.version,
            "source": p.source,
            "module": p.module,
            "hooks": p.hooks,
            "analyses": p.analyses,
            "error": p.error,
        }
        for p in list_plugins()
    ]
    if format is not Format.json:
        for row in rows:
            row["hooks"] = ", ".join(row["hooks"])
            row["analyses"] = ", ".join(row["analyses"])
    render(rows, format, ["plugin", "version", "source", "hooks", "analyses", "error"])
