"""Settings: where the catalog and the store live, and which device to use.

Resolution order for the catalog URL: an explicit argument (``--db``), then
``LSDB_DATABASE_URL``, then an embedded SQLite file at ``$LSDB_HOME/catalog.sqlite``
(``LSDB_HOME`` defaults to ``~/.lsdb``). The store root is ``--store``, then ``LSDB_STORE``,
then a ``store`` folder beside the SQLite file (or under ``LSDB_HOME`` for a server URL).
Nothing here touches the disk or the network: `Settings` only computes paths and URLs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lsdb.errors import BadInput


def lsdb_home() -> Path:
    """``$LSDB_HOME`` or ``~/.lsdb``."""
    return Path(os.environ.get("LSDB_HOME") or Path.home() / ".lsdb").expanduser()


def normalize_url(url: str) -> str:
    """Accept a bare path as a SQLite file and ``postgresql://`` as psycopg 3."""
    url = url.strip()
    if not url:
        raise BadInput("empty database URL; pass --db URL or set LSDB_DATABASE_URL")
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for in-memory and server URLs."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        return None
    return Path(path.split("?", 1)[0])


@dataclass(frozen=True)
class Settings:
    """Where the catalog and the artifact store are."""

    database_url: str
    store_root: Path

    @classmethod
    def resolve(cls, db: str | None = None, store: str | os.PathLike[str] | None = None) -> Settings:
        url = normalize_url(db or os.environ.get("LSDB_DATABASE_URL") or str(lsdb_home() / "catalog.sqlite"))
        store_env = store or os.environ.get("LSDB_STORE")
        if store_env:
            root = Path(store_env).expanduser().resolve()
        else:
            file = sqlite_path(url)
            root = (file.parent if file is not None else lsdb_home()) / "store"
        return cls(database_url=url, store_root=root)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def describe(self) -> str:
        """The URL with any password masked, for messages."""
        url = self.database_url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in creds else url
        return url
