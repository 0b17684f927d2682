"""Alembic is the schema's only source of truth: it must match the models, both ways."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from lsdb.catalog.engine import make_engine
from lsdb.catalog.migrate import VERSION_TABLE, current_revision, head_revision, upgrade
from lsdb.catalog.models import Base
from lsdb.errors import SchemaOutOfDate


def test_upgrade_head_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_version_table_is_namespaced(sqlite_url: str) -> None:
    tables = set(inspect(make_engine(sqlite_url)).get_table_names())
    assert VERSION_TABLE in tables and "alembic_version" not in tables


def test_new_catalog_is_created_at_head_on_first_use(tmp_path: Path) -> None:
    from lsdb.testing import open_db as open_catalog

    cat = open_catalog(str(tmp_path / "new.sqlite"), tmp_path / "store")
    assert current_revision(cat.db.engine) == head_revision()
    assert cat.runs.list() == []


def test_sqlite_runs_in_wal_with_foreign_keys(catalog) -> None:  # type: ignore[no-untyped-def]
    with catalog.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_downgrade_then_upgrade_round_trips(tmp_path: Path) -> None:
    from alembic import command

    from lsdb.catalog.migrate import _config

    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    upgrade(engine)
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_catalog_behind_head_is_refused_naming_upgrade(tmp_path: Path, sqlite_template: Path) -> None:
    from lsdb.testing import open_db as open_catalog

    path = tmp_path / "old.sqlite"
    shutil.copy(sqlite_template, path)
    con = sqlite3.connect(path)
    con.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'base_stub'")
    con.commit()
    con.close()
    # a revision this lsdb does not know: made by a newer lsdb
    with pytest.raises(SchemaOutOfDate, match="newer lsdb"):
        open_catalog(str(path), tmp_path / "store")


def test_catalog_behind_head_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path) -> None:
    """Simulate an older catalog by pretending this lsdb's head is a later revision."""
    from lsdb.catalog import migrate
    from lsdb.testing import open_db as open_catalog

    path = tmp_path / "c.sqlite"
    shutil.copy(sqlite_template, path)
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999")
    monkeypatch.setattr(migrate, "_head_by_file_name", lambda: "9999")
    with pytest.raises(SchemaOutOfDate, match="lsdb db upgrade"):
        open_catalog(str(path), tmp_path / "store")


def test_two_processes_creating_one_catalog_do_not_race(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    code = (
        "import sys; from lsdb.testing import open_db; "
        f"c = open_db({url!r}, {str(tmp_path / 'store')!r}); print(len(c.runs.list()))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1].decode()[-500:] for o in outs]
    assert current_revision(make_engine(url)) == head_revision()


def test_0002_adds_the_nonfinite_flag_both_ways(db_url: str, tmp_path: Path) -> None:
    """0001 → 0002 keeps existing checkpoints (flag false), 0002 → 0001 drops only the column."""
    from alembic import command
    from sqlalchemy import text

    from lsdb.catalog.migrate import _config

    engine = make_engine(db_url)
    if engine.dialect.name == "sqlite":  # a fresh file; PostgreSQL: the test's own (emptied) database
        engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
        upgrade(engine)

    def migrate(to: str) -> None:
        with engine.begin() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            (command.downgrade if to == "0001" else command.upgrade)(cfg, to)

    try:
        migrate("0001")
        assert "nonfinite" not in {c["name"] for c in inspect(engine).get_columns("checkpoints")}
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO runs (project, name, loss, status, created_at) "
                              "VALUES ('p', 'r', 'mse', 'complete', 0)"))
            conn.execute(text("INSERT INTO blobs (digest, size, media_type, path, created_at) "
                              "VALUES ('ab', 1, 'x', 'p', 0)"))
            conn.execute(text("INSERT INTO checkpoints (run_id, tensor_digest, schema_digest, n_params, n_tensors, "
                              "blob_digest, created_at) SELECT id, 'ab', 's', 1, 1, 'ab', 0 FROM runs"))
        migrate("0002")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT nonfinite FROM checkpoints")).scalar_one() in (False, 0)
        migrate("0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM checkpoints")).scalar_one() == 1
    finally:
        migrate("head")
        with engine.begin() as conn:
            for table in ("checkpoints", "blobs", "runs"):
                conn.execute(text(f"DELETE FROM {table}"))
        engine.dispose()
