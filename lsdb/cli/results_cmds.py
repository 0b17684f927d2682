"""`lsdb results [show|export]` and `lsdb plot`."""

from __future__ import annotations

from pathlib import Path

import typer

from lsdb.cli.render import Format, fmt_time, render, render_mapping
from lsdb.cli.state import state

results_app = typer.Typer(help="Stored analysis results.", invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(results_app, name="results")
    app.command("plot")(plot)


@results_app.callback()
def results(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run"),
    analysis: str = typer.Option(None, "--analysis"),
    project: str = typer.Option(None, "--project"),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List results (optionally of one run or one analysis)."""
    if ctx.invoked_subcommand is not None:
        return
    records = [result.record for result in state(ctx).catalog().results(run, analysis, project)]
    if format is Format.json:
        render([r.to_dict() for r in records], format)
        return
    rows = []
    for r in records:
        inputs = ", ".join(f"{i.run}@{i.step}" if i.step is not None else f"#{i.checkpoint_id}" for i in r.inputs[:3])
        scalars = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.scalars.items())[:4])
        rows.append(
            {
                "id": r.id,
                "analysis": r.analysis,
                "inputs": inputs + (" ..." if len(r.inputs) > 3 else ""),
                "scalars": scalars,
                "seconds": r.wall_seconds,
                "created": fmt_time(r.created_at),
            }
        )
    render(rows, format, ["id", "analysis", "inputs", "scalars", "seconds", "created"])


@results_app.command("show")
def show(ctx: typer.Context, result_id: int, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Inputs, params, scalars and arrays of one result."""
    r = state(ctx).catalog().result(result_id).record
    if format is Format.json:
        render_mapping(r.to_dict(), format)
        return
    render_mapping(
        {
            "id": r.id,
            "analysis": f"{r.analysis} v{r.analysis_version}",
            "plugin": f"{r.plugin_name} {r.plugin_version}",
            "created": fmt_time(r.created_at),
            "device": r.device,
            "seed": r.seed,
            "seconds": r.wall_seconds,
            "dataset": r.dataset_spec,
            "cache_key": r.cache_key,
            "artifact": r.artifact_digest,
            "job": r.job_id,
            "produced checkpoints": r.produced,
        }
    )
    render(
        [
            {"role": i.role, "position": i.position, "checkpoint": i.checkpoint_id, "run": i.run, "step": i.step}
            for i in r.inputs
        ],
        format,
        title="inputs",
    )
    render([{"param": k, "value": v} for k, v in sorted(r.params.items())], format, title="params")
    render([{"scalar": k, "value": v} for k, v in sorted(r.scalars.items())], format, title="scalars")
    render([{"array": k, **v} for k, v in r.arrays.items()], format, title="arrays")


@results_app.command("export")
def export(
    ctx: typer.Context,
    result_id: int,
    format: str = typer.Option("npz", "--format", help="npz | csv | json | vtk | html"),
    output: Path = typer.Option(None, "--output", "-o", help="File to write (default: result-ID.FORMAT)."),
) -> None:
    """Export a result's arrays and scalars (npz, csv or json)."""
    path = state(ctx).catalog().export(result_id, format, output)
    typer.echo(str(path))


def plot(
    ctx: typer.Context,
    result_id: int = typer.Argument(..., help="Result id (see `lsdb results`)."),
    output: Path = typer.Option(None, "--output", "-o", help="FILE.png|svg|pdf (default: result-ID-KIND.png)."),
    kind: str = typer.Option("default", "--kind", help="Renderer name (e.g. contour, filled, 3d)."),
) -> None:
    """Plot a result with its analysis' renderer."""
    path = state(ctx).catalog().plot(result_id, kind, output)
    typer.echo(str(path))
