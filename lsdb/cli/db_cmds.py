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
    st = state(ctx)
    catalog = st.catalog()
    catalog.objects.check_writable()
    typer.echo(f"catalog: {catalog.settings.describe()}")
    typer.echo(f"store:   {catalog.settings.store_root}")


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Upgrade the catalog's schema to the one this lsdb needs."""
    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import upgrade as run_upgrade

    settings = state(ctx).settings()
    before, after = run_upgrade(make_engine(settings.database_url))
    if before == after:
        typer.echo(f"already at {after}")
    else:
        typer.echo(f"upgraded {before or 'empty'} -> {after}")


@db_app.command("current")
def current(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format")) -> None:
    """Show the catalog's schema revision and the one this lsdb needs."""
    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import current_revision, head_revision

    settings = state(ctx).settings()
    rev = current_revision(make_engine(settings.database_url))
    head = head_revision()
    render_mapping(
        {"catalog": settings.describe(), "current": rev or "(empty)", "head": head, "up_to_date": rev == head}, format
    )
