"""Building the SQLAlchemy engine for a catalog URL, with lsdb's connection rules.

SQLite: WAL journal, ``foreign_keys=ON``, a busy timeout, and transactions that lsdb
opens itself: ``BEGIN IMMEDIATE`` for writes (so two writers queue on the lock instead of
failing with "database is locked" at commit), a plain ``BEGIN`` for reads.
PostgreSQL: psycopg 3, pre-ping so a restarted server is reconnected transparently.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from lsdb.config import sqlite_path
from lsdb.errors import BadInput

SQLITE_BUSY_TIMEOUT_MS = 60_000
WRITE = {"lsdb_write": True}
APPLICATION_ID = 0x4C534442
"""``PRAGMA application_id`` of an lsdb SQLite catalog ("LSDB"), set on creation and upgrade."""
VERSION_TABLE = "lsdb_alembic_version"
_SQLITE_HEADER = b"SQLite format 3\x00"
_READ_ONLY_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def check_sqlite_file(url: str) -> None:
    """Refuse, touching nothing, a `--db` file that is not a database or is another application's.

    Read before any connection of the engine (whose connect hook switches to WAL) and before the
    schema lock (a `.lock` file beside the catalog): the file's header, then, through a read-only
    connection, its ``application_id`` and tables. An empty file or an empty database is fine (a
    new catalog); an lsdb catalog is marked by its ``application_id`` or its version table.
    """
    import sqlite3

    path = sqlite_path(url)
    if path is None or not path.is_file():
        return
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise BadInput(f"cannot read the catalog file {path}: {exc.strerror}") from None
    if not header:
        return
    if header != _SQLITE_HEADER:
        raise BadInput(f"--db {path} is not a SQLite database; pass an lsdb catalog or a new file name")
    def peek(query: str) -> tuple[int, list[str]]:
        conn = sqlite3.connect(f"file:{path}?{query}", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            return app_id, [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.close()

    try:
        try:
            app_id, tables = peek("mode=ro")
        except sqlite3.OperationalError:  # a WAL database in a read-only folder: no -shm can be made
            app_id, tables = peek("mode=ro&immutable=1")
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"--db {path} is not a usable SQLite database ({exc})") from None
    if app_id == APPLICATION_ID or not tables or VERSION_TABLE in tables:
        return
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise BadInput(f"--db {path} is another application's database (tables: {shown}), not an lsdb catalog; "
                   "lsdb leaves it untouched: pass an lsdb catalog or a new file name")


def sqlite_read_only(url: str) -> str | None:
    """How an existing SQLite catalog must be opened when it cannot be written: ``"ro"`` (the file
    is read-only: ``mode=ro``, no WAL switch), ``"immutable"`` (its folder is read-only too, so
    SQLite cannot make its ``-shm`` file: ``immutable=1``), or None when it is writable or new."""
    import os

    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    folder_ok = os.access(path.parent, os.W_OK)
    if os.access(path, os.W_OK) and folder_ok:
        return None
    return "ro" if folder_ok else "immutable"


def _read_only_url(url: str, mode: str) -> str:
    path = sqlite_path(url)
    assert path is not None
    query = "mode=ro&immutable=1" if mode == "immutable" else "mode=ro"
    return f"sqlite:///file:{path.resolve()}?{query}&uri=true"


def is_read_only(engine: Engine) -> bool:
    """Whether `make_engine` opened this catalog read-only."""
    return engine in _READ_ONLY_ENGINES


def mark_catalog(conn: Connection) -> None:
    """Mark a SQLite catalog as lsdb's (``PRAGMA application_id``), in the creating/upgrading transaction."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")


def make_engine(url: str) -> Engine:
    """An engine for `url`; raises `BadInput` for URLs SQLAlchemy cannot use."""
    try:
        if url.startswith("sqlite"):
            check_sqlite_file(url)  # before anything connects (WAL) or locks (.lock)
            read_only = sqlite_read_only(url)
            if read_only is not None:
                engine = create_engine(_read_only_url(url, read_only), poolclass=NullPool,
                                       connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     "check_same_thread": False})
                _READ_ONLY_ENGINES.add(engine)
                _install_sqlite_rules(engine, read_only=True)
                return engine
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


def _install_sqlite_rules(engine: Engine, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if read_only:  # nothing that writes: no WAL switch, no synchronous setting
            cur.close()
            return
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
