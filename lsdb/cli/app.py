"""The `lsdb` command: global options, error handling, and one sub-module per noun (imported when used)."""

from __future__ import annotations

import sys

import typer

from lsdb.cli.group import PLUGIN_COMMANDS_NOTE, LazyGroup
from lsdb.cli.state import State

app = typer.Typer(
    name="lsdb",
    help="lsdb: a loss-landscape database. Ingest checkpoints, run landscape analyses, compare runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,  # commands are imported when run, plugins' commands when asked for: see lsdb.cli.group
    epilog=PLUGIN_COMMANDS_NOTE,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: str = typer.Option(None, "--db", help="Catalog URL (sqlite:///file, postgresql+psycopg://...) or a file path."),
    store: str = typer.Option(None, "--store", help="Artifact store root (default: beside the SQLite catalog)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    ctx.obj = State(db=db, store=store, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `LsdbError`s become one line on stderr and a non-zero exit."""
    from lsdb.allocator import keep_freed_memory
    from lsdb.errors import LsdbError

    keep_freed_memory()  # see lsdb.allocator: big tensors are reused instead of faulted in again
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
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
