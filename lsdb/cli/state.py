"""What every command shares: the global options and a lazily opened catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from lsdb.catalog import CatalogDB


@dataclass
class State:
    db: str | None = None
    store: str | None = None
    debug: bool = False
    _catalog: CatalogDB | None = field(default=None, repr=False)

    def catalog(self) -> CatalogDB:
        """Open the catalog on first use (creating it at the current schema if new)."""
        if self._catalog is None:
            from lsdb.catalog import CatalogDB
            from lsdb.config import Settings

            self._catalog = CatalogDB(Settings.resolve(self.db, self.store))
        return self._catalog

    def settings(self):  # type: ignore[no-untyped-def]
        from lsdb.config import Settings

        return Settings.resolve(self.db, self.store)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj
