"""`lsdb runs`, `lsdb checkpoints`, `lsdb show checkpoint ID`."""

from __future__ import annotations

import sys
from typing import Any

import typer

from lsdb.cli.render import Format, fmt_time, render, render_mapping
from lsdb.cli.state import state
from lsdb.service.listing import checkpoints_json

show_app = typer.Typer(help="Show one object in detail.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
    app.command("checkpoints")(checkpoints)
    app.add_typer(show_app, name="show")


def _spec(spec: dict[str, Any] | None) -> str:
    if not spec:
        return ""
    from lsdb.specs import parse_spec

    return str(parse_spec(spec))


def runs(
    ctx: typer.Context,
    project: str = typer.Option(None, "--project"),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """List runs with their model, dataset, checkpoint count and last metrics."""
    records = state(ctx).catalog().runs.list(project)
    if format is Format.json:
        render([r.to_dict() for r in records], format)
        return
    rows = []
    metric_keys: list[str] = sorted({k for r in records for k in r.metrics})
    for r in records:
        row = {
            "id": r.id,
            "project": r.project,
            "run": r.name,
            "model": _spec(r.model_spec),
            "dataset": _spec(r.dataset_spec),
            "loss": r.loss,
            "status": r.status,
            "checkpoints": r.n_checkpoints,
        }
        row.update({k: r.metrics.get(k) for k in metric_keys})
        rows.append(row)
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
        sys.stdout.write(checkpoints_json(state(ctx).catalog().checkpoints.list_rows(run, project, limit)) + "\n")
        return
    records = state(ctx).catalog().checkpoints.list(run, project, limit)
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
        }
        for r in records
    ]
    render(rows, format, ["id", "project", "run", "step", "epoch", "params", "tensor_digest", "schema", "created"])


@show_app.command("checkpoint")
def show_checkpoint(
    ctx: typer.Context,
    checkpoint_id: int = typer.Argument(..., help="Checkpoint id (see `lsdb checkpoints`)."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Parameter count, layers with shapes, digests, source path and step of one checkpoint."""
    from lsdb.inspection import describe_checkpoint

    info = describe_checkpoint(state(ctx).catalog(), checkpoint_id)
    if format is Format.json:
        render_mapping(info, format)
        return
    layers = info.pop("layers")
    render_mapping({k: v for k, v in info.items()}, Format.table if format is Format.table else format)
    render(layers, format, ["name", "dtype", "shape", "numel"], title="layers")
