"""The `lsdb` command: global options, error handling, and one sub-module per noun."""

from __future__ import annotations

import sys

import typer

from lsdb.cli import (
    analysis_cmds,
    catalog_cmds,
    compare_cmds,
    db_cmds,
    ingest_cmds,
    jobs_cmds,
    maintenance_cmds,
    results_cmds,
    train_cmds,
    ui_cmds,
)
from lsdb.cli.state import State

app = typer.Typer(
    name="lsdb",
    help="lsdb: a loss-landscape database. Ingest checkpoints, run landscape analyses, compare runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: str = typer.Option(None, "--db", help="Catalog URL (sqlite:///file, postgresql+psycopg://...) or a file path."),
    store: str = typer.Option(None, "--store", help="Artifact store root (default: beside the SQLite catalog)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    ctx.obj = State(db=db, store=store, debug=debug)


db_cmds.register(app)
ingest_cmds.register(app)
catalog_cmds.register(app)
maintenance_cmds.register(app)
analysis_cmds.register(app)
results_cmds.register(app)
jobs_cmds.register(app)
compare_cmds.register(app)
train_cmds.register(app)
ui_cmds.register(app)


def _wants_plugin_commands(args: list[str]) -> bool:
    """Plugins' commands are loaded only when the command is not a built-in one (or for help),
    so `lsdb checkpoints` does not import every plugin."""
    words: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in ("--db", "--store"):
            skip = True
        elif not a.startswith("-"):
            words.append(a)
    builtin = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    return not words or words[0] not in builtin or "--help" in args


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `LsdbError`s become one line on stderr and a non-zero exit."""
    from lsdb.allocator import keep_freed_memory
    from lsdb.errors import LsdbError

    keep_freed_memory()  # see lsdb.allocator: big tensors are reused instead of faulted in again
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if _wants_plugin_commands(args):
        from lsdb.service import add_plugin_commands

        add_plugin_commands(app)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="lsdb")  # usage errors: click's message, exit 2
    except LsdbError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        # one line: a database error's message carries the SQL and its parameters on the next lines
        first = (str(exc).strip().splitlines() or [""])[0]
        sys.stderr.write(f"error: {type(exc).__name__}: {first} (run with --debug for the traceback)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
