"""`lsdb ingest`: checkpoint files and trajectory folders into the catalog."""

from __future__ import annotations

from pathlib import Path

import typer

from lsdb.cli.render import Format, render
from lsdb.cli.state import state
from lsdb.errors import BadInput


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """``k=v`` options into a dict; a malformed one is a one-line error."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise BadInput(f"{what} '{item}' is not key=value")
        key, value = item.split("=", 1)
        if not key.strip():
            raise BadInput(f"{what} '{item}' has an empty key")
        out[key.strip()] = value
    return out


def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Checkpoint files or trajectory folders."),
    run: str = typer.Option(..., "--run", help="Run to add the checkpoints to (created if new)."),
    project: str = typer.Option("default", "--project"),
    model: str = typer.Option(None, "--model", help="Model spec, e.g. mlp:widths=[128,128]"),
    dataset: str = typer.Option(None, "--dataset", help="Dataset spec, e.g. digits"),
    loss: str = typer.Option(None, "--loss", help="cross_entropy (default) or mse"),
    step: int = typer.Option(None, "--step", help="Step of a single file."),
    epoch: float = typer.Option(None, "--epoch", help="Epoch of a single file."),
    tag: list[str] = typer.Option(None, "--tag", help="k=v, repeatable."),
    param: list[str] = typer.Option(None, "--param", help="k=v, repeatable (numbers are stored as numbers)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Look in subfolders."),
    format: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Ingest checkpoints (.pt/.pth/.bin/.ckpt/.safetensors) safely: weights only, never code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    params, tags = parse_pairs(param, "--param"), parse_pairs(tag, "--tag")
    catalog = state(ctx).catalog()
    with Progress(
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        transient=True,
        disable=format is not Format.table,
    ) as bar:
        task = bar.add_task("", total=None)
        report = catalog.ingest(
            paths,
            run,
            project=project,
            model=model,
            dataset=dataset,
            loss=loss,
            step=step,
            epoch=epoch,
            tags=tags,
            params=params,
            recursive=recursive,
            on_start=lambda n: bar.update(task, total=n),
            on_file=lambda o: bar.update(task, advance=1, description=Path(o.path).name),
        )
    rows = [
        {
            "file": o.path,
            "status": o.status,
            "checkpoint": o.checkpoint.id if o.checkpoint else None,
            "step": o.checkpoint.step if o.checkpoint else None,
            "detail": "; ".join([o.message, *o.notes]) if o.status == "failed" else "; ".join(o.notes),
        }
        for o in report.outcomes
    ]
    render(rows, format, ["file", "status", "checkpoint", "step", "detail"])
    if format is Format.table:
        typer.echo(f"run '{project}/{run}': {report.summary()}", err=True)
    failed = report.failed
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise BadInput(f"{first.message}{more}")
