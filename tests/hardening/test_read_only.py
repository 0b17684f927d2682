"""A read-only catalog (its folder on a read-only mount, or its file immutable): reading commands
work, writing commands fail in one line saying so, and nothing is written.

The read-only folder is a real one: a tmpfs mounted for the test and remounted read-only (root
ignores file modes, not a read-only mount); the read-only file is made immutable with
`chattr +i`. Each part is skipped where the machine does not permit it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.ingest.conftest import make_state


def _lsdb(db: Path, store: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsdb.cli.app", "--db", str(db), "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def _populate(folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    db, store = folder / "catalog.sqlite", folder / "store"
    torch.save(make_state(0, width=8), tmp_path / "w.pt")
    assert _lsdb(db, store, "ingest", str(tmp_path / "w.pt"), "--run", "r").returncode == 0
    done = _lsdb(db, store, "run", "layer-norms", "r:last", "--inline")
    assert done.returncode == 0, done.stderr
    return db, store


def _check_reads_and_refused_writes(db: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for args in (["runs"], ["checkpoints"], ["results"], ["compare"], ["show", "checkpoint", "1"],
                 ["results", "show", "1"], ["results", "export", "1", "--format", "json", "-o", str(out / "r.json")],
                 ["run", "layer-norms", "r:last", "--inline"]):  # a cached result is read, not computed
        got = _lsdb(db, store, *args)
        assert got.returncode == 0, (args, got.stderr)
    assert json.loads((out / "r.json").read_text())
    runs = json.loads(_lsdb(db, store, "runs", "--format", "json").stdout)
    assert [r["name"] for r in runs] == ["r"]
    torch.save(make_state(1, width=8), tmp_path / "w2.pt")
    for args in (["ingest", str(tmp_path / "w2.pt"), "--run", "r2"], ["gc"],
                 ["run", "layer-norms", "r:last", "--inline", "--force"], ["run", "layer-norms", "r:last", "--force"]):
        got = _lsdb(db, store, *args)
        assert got.returncode != 0, args
        lines = [ln for ln in got.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and "read-only" in lines[0], (args, got.stderr)


@pytest.fixture
def ro_mount(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "lsdb-test", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_catalog_on_a_read_only_mount(ro_mount: Path, tmp_path: Path) -> None:
    db, store = _populate(ro_mount, tmp_path)
    assert subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], capture_output=True).returncode == 0
    before = sorted(p.name for p in ro_mount.iterdir())
    _check_reads_and_refused_writes(db, store, tmp_path)
    assert sorted(p.name for p in ro_mount.iterdir()) == before


def test_an_immutable_catalog_file(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    db, store = _populate(folder, tmp_path)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    try:
        size = db.stat().st_size
        _check_reads_and_refused_writes(db, store, tmp_path)
        assert db.stat().st_size == size
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
