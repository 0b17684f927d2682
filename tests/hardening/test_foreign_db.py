"""`--db` naming another application's SQLite file, or a file that is not a database: one line,
nothing touched (no tables, no WAL switch, no `.lock`, `-wal` or `-shm` left beside it)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def _lsdb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsdb.cli.app", *args], capture_output=True, text=True, timeout=120)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_another_applications_database_is_left_untouched(tmp_path: Path) -> None:
    app = tmp_path / "app.db"
    conn = sqlite3.connect(app)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = app.read_bytes()
    for command in (["runs"], ["init"], ["db", "upgrade"]):
        out = _lsdb("--db", str(app), "--store", str(tmp_path / "store"), *command)
        assert out.returncode != 0
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and "another application's database" in lines[0], out.stderr
    assert app.read_bytes() == before and _listing(tmp_path) == ["app.db"]
    conn = sqlite3.connect(f"file:{app}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database at all\n" * 10)
    out = _lsdb("--db", str(notes), "runs")
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "is not a SQLite database" in lines[0], out.stderr
    assert _listing(tmp_path) == ["notes.txt"]


def test_lsdb_catalogs_are_marked_and_still_open(tmp_path: Path) -> None:
    from lsdb.catalog.engine import APPLICATION_ID

    db = tmp_path / "cat.sqlite"
    assert _lsdb("--db", str(db), "init").returncode == 0
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute("PRAGMA application_id = 0")  # an lsdb catalog made before the mark: its version table counts
    conn.commit()
    conn.close()
    assert _lsdb("--db", str(db), "runs").returncode == 0
    assert _lsdb("--db", str(db), "db", "upgrade").returncode == 0
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID  # marked on upgrade
    conn.close()
