"""`Database`: the catalog's engine and its transactions; nothing else in lsdb touches the engine.

`read()` and `write()` are the two kinds of transaction every repository method runs in: writes
on SQLite run under ``BEGIN IMMEDIATE`` (see `lsdb.catalog.engine`), reads under a plain
``BEGIN`` and are rolled back. A connection that cannot be made becomes one `LsdbError` line
naming the catalog. `insert` is the dialect's INSERT (with ``ON CONFLICT``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from lsdb.catalog.engine import WRITE, db_now_ms, describe_connect_error, is_read_only, make_engine
from lsdb.catalog.migrate import ensure_current
from lsdb.config import Settings
from lsdb.errors import LsdbError, ReadOnlyCatalog

__all__ = ["Database", "insert", "local_ms"]


def local_ms() -> int:
    """This machine's clock in epoch milliseconds (creation times; leases use `Database.now_ms`)."""
    return int(time.time() * 1000)


class Database:
    """The engine (built once from `settings`, or injected) and the transactions over it."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None, check_schema: bool = True) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        if check_schema:
            try:
                ensure_current(self.engine)
            except OperationalError as exc:
                raise LsdbError(describe_connect_error(settings.describe(), exc)) from None

    @property
    def read_only(self) -> bool:
        """Whether the catalog was opened read-only (its file or folder cannot be written)."""
        return is_read_only(self.engine)

    def check_writable(self) -> None:
        """`ReadOnlyCatalog` (one line) when the catalog cannot be written."""
        if self.read_only:
            raise ReadOnlyCatalog(f"the catalog {self.settings.describe()} is read-only (its file or folder cannot "
                                  "be written); reading commands work, this one writes")

    @property
    def dialect(self) -> str:
        """The backend's name: ``sqlite`` or ``postgresql``."""
        return str(self.engine.dialect.name)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends (rolled back on an exception)."""
        self.check_writable()
        try:
            with self.engine.execution_options(**WRITE).begin() as conn:
                yield conn
        except OperationalError as exc:
            if _is_connection_error(exc):
                raise LsdbError(describe_connect_error(self.settings.describe(), exc)) from None
            raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction, rolled back when the block ends."""
        try:
            with self.engine.connect() as conn:
                yield conn
                conn.rollback()
        except OperationalError as exc:
            if _is_connection_error(exc):
                raise LsdbError(describe_connect_error(self.settings.describe(), exc)) from None
            raise

    def now_ms(self) -> int:
        """The database's clock in UTC epoch milliseconds (leases and heartbeats compare against it)."""
        with self.read() as conn:
            return db_now_ms(conn)

    def close(self) -> None:
        self.engine.dispose()


def insert(conn: Connection, table: Any) -> Any:
    """The dialect's INSERT for `table` (with ``on_conflict_do_nothing`` / ``_do_update``)."""
    if conn.dialect.name == "postgresql":  # imported here: the dialect module is slow to import
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _is_connection_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(
        s in text
        for s in (
            "connection",
            "could not connect",
            "unable to open",
            "server closed",
            "does not exist",
            "authentication",
        )
    )
