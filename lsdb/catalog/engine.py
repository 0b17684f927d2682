"""Building the SQLAlchemy engine for a catalog URL, with lsdb's connection rules.

SQLite: WAL journal, ``foreign_keys=ON``, a busy timeout, and transactions that lsdb
opens itself: ``BEGIN IMMEDIATE`` for writes (so two writers queue on the lock instead of
failing with "database is locked" at commit), a plain ``BEGIN`` for reads.
PostgreSQL: psycopg 3, pre-ping so a restarted server is reconnected transparently.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from lsdb.config import sqlite_path
from lsdb.errors import BadInput

SQLITE_BUSY_TIMEOUT_MS = 60_000
WRITE = {"lsdb_write": True}


def make_engine(url: str) -> Engine:
    """An engine for `url`; raises `BadInput` for URLs SQLAlchemy cannot use."""
    try:
        if url.startswith("sqlite"):
            path = sqlite_path(url)
            if path is not None and not path.parent.exists():
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise BadInput(f"cannot create the catalog folder {path.parent}: {exc.strerror}") from None
            # pooled: reusing connections makes small transactions several times cheaper
            # (each new connection re-runs the PRAGMAs); in-memory databases cannot be pooled
            pool = {} if path is not None else {"poolclass": NullPool}
            engine = create_engine(
                url,
                pool_size=5,
                max_overflow=10,
                pool_pre_ping=False,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                **pool,
            ) if path is not None else create_engine(
                url, connect_args={"check_same_thread": False}, **pool
            )
            _install_sqlite_rules(engine)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_recycle=1800)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise BadInput(f"database URL '{url}' is not usable: {exc}") from None


def _install_sqlite_rules(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            _retry_locked(lambda: cur.execute("PRAGMA journal_mode = WAL"))
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("lsdb_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _retry_locked(fn: Any, attempts: int = 50) -> Any:
    import sqlite3

    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05)


def db_now_ms(conn: Connection) -> int:
    """The database's clock in UTC epoch milliseconds (leases compare against this)."""
    if conn.dialect.name == "sqlite":
        value = conn.execute(text("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")).scalar_one()
    elif conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")).scalar_one()
    else:
        value = int(time.time() * 1000)
    return int(value)


def describe_connect_error(url: str, exc: OperationalError) -> str:
    """One line for a catalog that cannot be reached."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
    return f"cannot open the catalog at {url}: {reason}; check --db / LSDB_DATABASE_URL"
