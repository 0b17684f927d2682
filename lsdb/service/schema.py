"""A catalog's schema revision, read or upgraded without opening it as a `Catalog` (`lsdb db ...`)."""

from __future__ import annotations

from lsdb.config import Settings


def upgrade_catalog(url: str | None = None) -> tuple[str | None, str]:
    """Upgrade a catalog's schema to this lsdb's; (revision before, revision after)."""
    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import upgrade

    engine = make_engine(Settings.resolve(url).database_url)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def catalog_revision(url: str | None = None) -> tuple[str | None, str]:
    """(the catalog's schema revision or None when empty, the one this lsdb needs)."""
    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import current_revision, head_revision

    engine = make_engine(Settings.resolve(url).database_url)
    try:
        return current_revision(engine), head_revision()
    finally:
        engine.dispose()
