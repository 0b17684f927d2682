"""What every command shares: the global options and a lazily opened catalog (the facade)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from lsdb.config import Settings

if TYPE_CHECKING:
    from lsdb.service import Catalog


@dataclass
class State:
    db: str | None = None
    store: str | None = None
    debug: bool = False
    _catalog: Catalog | None = field(default=None, repr=False)

    def catalog(self) -> Catalog:
        """Open the catalog on first use (creating it at the current schema if new)."""
        if self._catalog is None:
            from lsdb.service import open_catalog

            self._catalog = open_catalog(self.db, self.store)
        return self._catalog

    def settings(self) -> Settings:
        """The catalog URL and store root the global options (or the environment) select."""
        return Settings.resolve(self.db, self.store)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj
