"""`lsdb runs`, `lsdb checkpoints`, `lsdb show checkpoint ID`."""

from __future__ import annotations

import sys

import typer

from lsdb.cli.render import Format, fmt_time, render, render_mapping
from lsdb.cli.state import state

show_app = typer.Typer(help="Show one object in detail.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
    app.command("checkpoints")(checkpoints)
    app.add_typer(show_app, name="show")


def runs(
    ctx: typer.Context,
    project: str = typer.Option(None, "--project"),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List runs with their model, dataset, checkpoint count and last metrics."""
    from lsdb.service import format_spec

    records = state(ctx).catalog().runs(project)
    if format is Format.json:
        render([r.to_dict() for r in records], format)
        return
    metric_keys: list[str] = sorted({k for r in records for k in r.metrics})
    rows = [
        {
            "id": r.id,
            "project": r.project,
            "run": r.name,
            "model": format_spec(r.model_spec),
            "dataset": format_spec(r.dataset_spec),
            "loss": r.loss,
            "status": r.status,
            "checkpoints": r.n_checkpoints,
            **{k: r.metrics.get(k) for k in metric_keys},
        }
        for r in records
    ]
    render(rows, format, ["id", "project", "run", "model", "dataset", "loss", "status", "checkpoints", *metric_keys])


def checkpoints(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run"),
    project: str = typer.Option(None, "--project"),
    limit: int = typer.Option(None, "--limit"),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List checkpoints (a run's trajectory is its checkpoints by step)."""
    if format is Format.json:
        sys.stdout.write(state(ctx).catalog().checkpoints_json(run, project, limit) + "\n")
        return
    records = state(ctx).catalog().checkpoints(run, project, limit)
    rows = [
        {
            "id": r.id,
            "project": r.project,
            "run": r.run,
            "step": r.step,
            "epoch": r.epoch,
            "params": r.n_params,
            "tensor_digest": r.tensor_digest[:12],
            "schema": r.schema_digest[:12],
            "created": fmt_time(r.created_at),
            "finite": "NaN/Inf" if r.nonfinite else "yes",
        }
        for r in records
    ]
    render(rows, format, ["id", "project", "run", "step", "epoch", "params", "tensor_digest", "schema", "created",
                          "finite"])


@show_app.command("checkpoint")
def show_checkpoint(
    ctx: typer.Context,
    checkpoint_id: int = typer.Argument(..., help="Checkpoint id (see `lsdb checkpoints`)."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Parameter count, layers with shapes, digests, source path and step of one checkpoint."""
    info = state(ctx).catalog().checkpoint(checkpoint_id)
    if format is Format.json:
        render_mapping(info, format)
        return
    layers = info.pop("layers")
    render_mapping(info, format)
    render(layers, format, ["name", "dtype", "shape", "numel"], title="layers")
