"""`lsdb run`, `lsdb analyses [show]`, `lsdb plugins`."""

from __future__ import annotations

from typing import Any

import typer

from lsdb.cli.render import Format, render, render_mapping
from lsdb.cli.state import state
from lsdb.errors import BadInput

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
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Run an analysis: inline now (--inline), or as a job for the workers."""
    from lsdb.analyses.runner import AnalysisRequest

    request = AnalysisRequest(
        analysis=analysis,
        inputs=list(inputs or []),
        params=parse_params(param),
        dataset=dataset,
        seed=seed,
        project=project,
        dtype=dtype,
    )
    catalog = state(ctx).catalog()
    if not inline:
        from lsdb.cli.jobs_cmds import enqueue_and_maybe_wait

        enqueue_and_maybe_wait(
            catalog, request, queue=queue, priority=priority, force=force, wait=wait, fmt=format,
            time_limit=time_limit, max_attempts=max_attempts, tile_size=tile_size,
        )
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from lsdb.analyses.runner import prepare, run_analysis

    prepared = prepare(catalog, request)
    with Progress(
        TextColumn(f"{analysis}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
        disable=format is not Format.table,
    ) as bar:
        task = bar.add_task("", total=1.0)
        result, computed = run_analysis(
            catalog,
            request,
            device=device,
            force=force,
            prepared=prepared,
            progress=lambda f, msg: bar.update(task, completed=f, description=msg),
        )
    show_result_summary(result, computed, format)


def show_result_summary(result, computed: bool, format: Format) -> None:  # type: ignore[no-untyped-def]
    if format is Format.json:
        render_mapping({**result.to_dict(), "computed": computed}, format)
        return
    rows = [{"scalar": k, "value": v} for k, v in sorted(result.scalars.items())]
    render(rows, format, ["scalar", "value"], title=f"result {result.id} ({result.analysis})")
    if format is Format.table:
        how = f"computed in {result.wall_seconds:.2f} s" if computed and result.wall_seconds else "cached"
        typer.echo(f"result {result.id}: {how}; `lsdb results show {result.id}`, `lsdb plot {result.id}`", err=True)


@analyses_app.callback()
def analyses(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format")) -> None:
    """List analyses with their inputs and plugin."""
    if ctx.invoked_subcommand is not None:
        return
    from lsdb.plugins import get_plugins

    rows = []
    for spec in sorted(get_plugins().analyses().values(), key=lambda s: s.name):
        rows.append(
            {
                "analysis": spec.name,
                "version": spec.version,
                "plugin": spec.plugin,
                "inputs": ", ".join(
                    f"{s.role}" + ("" if s.min == s.max == 1 else f"[{s.min}..{s.max or ''}]") for s in spec.inputs
                ),
                "summary": spec.summary,
            }
        )
    render(rows, format, ["analysis", "version", "plugin", "inputs", "summary"])


@analyses_app.command("show")
def analyses_show(name: str, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Inputs, parameters (type, default, help) and documentation of one analysis."""
    from lsdb.analyses.spec import describe_params
    from lsdb.plugins import get_analysis

    spec = get_analysis(name)
    params = describe_params(spec)
    inputs = [{"role": s.role, "kind": s.kind, "min": s.min, "max": s.max, "help": s.help} for s in spec.inputs]
    if format is Format.json:
        render_mapping(
            {
                "name": spec.name,
                "version": spec.version,
                "plugin": spec.plugin,
                "resources": spec.resources,
                "description": spec.description,
                "inputs": inputs,
                "params": params,
            },
            format,
        )
        return
    typer.echo(f"{spec.name} (version {spec.version}, plugin {spec.plugin}, resources {spec.resources})\n")
    typer.echo((spec.description or "").strip() + "\n")
    render(inputs, format, ["role", "kind", "min", "max", "help"], title="inputs")
    render(params, format, ["name", "type", "default", "choices", "help"], title="parameters")


def plugins(format: Format = typer.Option(Format.table, "--format")) -> None:
    """Loaded plugins: version, hooks, analyses and any load error."""
    from lsdb.plugins import plugin_infos

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
        for p in plugin_infos()
    ]
    if format is not Format.json:
        for row in rows:
            row["hooks"] = ", ".join(row["hooks"])
            row["analyses"] = ", ".join(row["analyses"])
    render(rows, format, ["plugin", "version", "source", "hooks", "analyses", "error"])
