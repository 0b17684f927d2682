"""Shared fixtures: a migrated SQLite template copied per test, the real PostgreSQL server,
and a CLI runner that calls the real `lsdb` entry point in-process.

PostgreSQL tests run when ``LSDB_TEST_POSTGRES_URL`` is set (CI sets it); the session creates
its own database on that server and drops it at the end.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_URL = os.environ.get("LSDB_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own LSDB_HOME; nothing leaks from the developer's environment."""
    monkeypatch.setenv("LSDB_HOME", str(tmp_path / "lsdb-home"))
    monkeypatch.delenv("LSDB_DATABASE_URL", raising=False)
    monkeypatch.delenv("LSDB_STORE", raising=False)
    # the tests' own factories are named by import path: trust the tests package on this machine
    monkeypatch.setenv("LSDB_TRUSTED_MODULES", "tests")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog migrated to head once per session; tests copy it."""
    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "catalog.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "catalog.sqlite"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _pg_admin_url(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the real server for this session, migrated to head."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need LSDB_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test)")
    from sqlalchemy import create_engine, text

    from lsdb.catalog.engine import make_engine
    from lsdb.catalog.migrate import upgrade
    from lsdb.config import normalize_url

    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"lsdb_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_admin_url(normalize_url(PG_URL), name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL catalog, emptied before each test."""
    from sqlalchemy import create_engine, text

    from lsdb.catalog.models import Base

    engine = create_engine(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Contract tests run once per backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def catalog(sqlite_url: str, store_root: Path):  # type: ignore[no-untyped-def]
    from lsdb.catalog import CatalogDB
    from lsdb.config import Settings

    cat = CatalogDB(Settings(sqlite_url, store_root.resolve()))
    yield cat
    cat.close()


@pytest.fixture
def any_catalog(db_url: str, store_root: Path):  # type: ignore[no-untyped-def]
    from lsdb.catalog import CatalogDB
    from lsdb.config import Settings

    cat = CatalogDB(Settings(db_url, store_root.resolve()))
    yield cat
    cat.close()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


class Cli:
    """Runs the real `lsdb` entry point in-process against one catalog and store."""

    def __init__(self, db: str | None, store: Path | None) -> None:
        self.db = db
        self.store = store

    def __call__(self, *args: str | os.PathLike[str]) -> CliResult:
        from lsdb.cli.app import main

        argv = []
        if self.db:
            argv += ["--db", self.db]
        if self.store:
            argv += ["--store", str(self.store)]
        argv += [str(a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        code = 0
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout, sys.stderr = old
        return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(sqlite_url: str, store_root: Path) -> Cli:
    return Cli(sqlite_url, store_root)


@pytest.fixture
def any_cli(db_url: str, store_root: Path) -> Cli:
    return Cli(db_url, store_root)
