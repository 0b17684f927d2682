"""A plugin that adds a top-level command `hello` (its register_commands hook)."""

import typer

from lsdb.hookspecs import hookimpl


def hello(name: str = typer.Option("world", "--name", help="Whom to greet.")) -> None:
    """Greet someone (a plugin's command)."""
    typer.echo(f"hello {name}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("hello")(hello)
