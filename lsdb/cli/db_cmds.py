"""`lsdb init`, `lsdb db upgrade`, `lsdb db current`."""

from __future__ import annotations

import typer

from lsdb.cli.render import Format, render_mapping
from lsdb.cli.state import state

db_app = typer.Typer(help="Catalog schema: upgrade and inspect.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(db_app, name="db")


def init(ctx: typer.Context) -> None:
    """Create the catalog (at the current schema) and the store, or check an existing one."""
    catalog = state(ctx).catalog()
    catalog.check_writable()
    typer.echo(f"catalog: {catalog.settings.describe()}")
    typer.echo(f"store:   {catalog.settings.store_root}")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Upgrade the catalog's schema to the one this lsdb needs."""
    from lsdb.service import upgrade_catalog

    before, after = upgrade_catalog(state(ctx).settings().database_url)
    if before == after:
        typer.echo(f"already at {after}")
    else:
        typer.echo(f"upgraded {before or 'empty'} -> {after}")


@db_app.command("current")
def current(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Show the catalog's schema revision and the one this lsdb needs."""
    from lsdb.service import catalog_revision

    settings = state(ctx).settings()
    rev, head = catalog_revision(settings.database_url)
    render_mapping(
        {"catalog": settings.describe(), "current": rev or "(empty)", "head": head, "up_to_date": rev == head}, format
    )
