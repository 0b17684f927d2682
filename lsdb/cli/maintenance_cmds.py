"""`lsdb gc` and `lsdb doctor`."""

from __future__ import annotations

import dataclasses

import typer

from lsdb.cli.render import Format, render
from lsdb.cli.state import state
from lsdb.errors import StoreError


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)
    app.command("doctor")(doctor)


def gc(
    ctx: typer.Context,
    older_than: float = typer.Option(3600.0, "--older-than", help="Only remove orphans older than this (seconds)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed."),
) -> None:
    """Remove store objects that no catalog row refers to."""
    report = state(ctx).catalog().gc(older_than, dry_run)
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(report.removed_objects)} objects, {len(report.removed_temp_files)} temporary files and "
        f"{len(report.removed_rows)} unreferenced blob rows ({report.freed_bytes / 1e6:.1f} MB); "
        f"kept {report.kept_young} orphans younger than {older_than:g} s"
    )


def doctor(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Re-hash every stored object and report missing or corrupt ones (non-zero exit if any)."""
    from rich.progress import Progress

    catalog = state(ctx).catalog()
    with Progress(transient=True, disable=format is not Format.table) as bar:
        task = bar.add_task("verifying", total=None)
        report = catalog.doctor(on_object=lambda: bar.advance(task))
    findings = report.findings
    if findings or format is not Format.table:
        render([dataclasses.asdict(f) for f in findings], format, ["digest", "status", "media_type", "size"])
    if findings:
        raise StoreError(
            f"{len(findings)} of {report.checked} objects are missing or corrupt (first: {findings[0].digest})"
        )
    if format is Format.table:
        typer.echo(f"{report.checked} objects verified, all intact")
