"""`lsdb ui`: a local web page to browse runs, spin landscapes in 3D, compare and follow jobs."""

from __future__ import annotations

import typer

from lsdb.cli.state import state


def register(app: typer.Typer) -> None:
    app.command("ui", help="Serve the web UI (runs, results in 3D, compare, jobs) over this catalog.")(ui)


def ui(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: localhost only)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    allow_writes: bool = typer.Option(
        False, "--allow-writes", help="Allow cancel/retry from the page (a token is required beyond localhost)."
    ),
) -> None:
    """Serve the web UI until interrupted (Ctrl-C)."""
    from lsdb.service.ui import serve_ui

    s = state(ctx)
    serve_ui(s.db, s.store, host=host, port=port, allow_writes=allow_writes)
