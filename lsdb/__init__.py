"""lsdb: a loss-landscape database.

Public API::

    import lsdb
    catalog = lsdb.open_catalog()            # the same object the CLI uses
    catalog.list_runs()
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lsdb.catalog import Catalog


def open_catalog(url: str | None = None, store: str | os.PathLike[str] | None = None) -> Catalog:
    """Open (creating at the current schema if new) the catalog at `url`.

    `url` defaults to ``LSDB_DATABASE_URL``, else ``$LSDB_HOME/catalog.sqlite``; `store`
    to ``LSDB_STORE``, else a ``store`` folder beside the SQLite file.
    """
    from lsdb.catalog import Catalog
    from lsdb.config import Settings

    return Catalog(Settings.resolve(url, store))


__all__ = ["__version__", "open_catalog"]
