"""The CLI's plumbing: init, db upgrade/current, gc, doctor, error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.ingest.conftest import make_state


def test_init_creates_catalog_and_store_in_lsdb_home(tmp_path: Path) -> None:
    from tests.conftest import Cli

    r = Cli(None, None)("init")
    assert r.exit_code == 0, r.stderr
    home = Path(os.environ["LSDB_HOME"])
    assert (home / "catalog.sqlite").exists() and (home / "store").is_dir()


def test_db_current_and_upgrade(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("db", "current", "--format", "json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["up_to_date"] is True
    up = cli("db", "upgrade")
    assert up.exit_code == 0 and "already at" in up.stdout


def test_env_var_selects_the_catalog(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Cli

    monkeypatch.setenv("LSDB_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    assert Cli(None, None)("runs").exit_code == 0
    assert (tmp_path / "env.sqlite").exists() and (tmp_path / "store").is_dir() is False


def test_gc_removes_orphans_and_doctor_finds_corruption(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    torch.save(make_state(1), tmp_path / "a.pt")
    assert cli("ingest", tmp_path / "a.pt", "--run", "r").exit_code == 0
    orphan = catalog.objects.put_bytes(b"orphan bytes")
    young = cli("gc")
    assert young.exit_code == 0 and catalog.objects.exists(orphan.digest)
    r = cli("gc", "--older-than", "0")
    assert r.exit_code == 0 and "removed 1 objects" in r.stdout
    assert not catalog.objects.exists(orphan.digest)
    assert len(list(catalog.objects.iter_digests())) == 1
    assert cli("doctor").exit_code == 0
    digest = catalog.blobs.list()[0].digest
    path = catalog.objects.path(digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = cli("doctor")
    assert bad.exit_code != 0 and "corrupt" in bad.stdout and digest[:12] in bad.stderr
    path.unlink()
    missing = cli("doctor", "--format", "json")
    assert missing.exit_code != 0 and json.loads(missing.stdout)[0]["status"] == "missing"


def test_unknown_command_and_bad_option_exit_nonzero(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("no-such-command").exit_code != 0
    assert cli("checkpoints", "--format", "xml").exit_code != 0


def test_console_script_runs(tmp_path: Path) -> None:
    env = {**os.environ, "LSDB_HOME": str(tmp_path / "h")}
    out = subprocess.run(
        [sys.executable, "-m", "lsdb.cli.app", "runs", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_python_api_returns_the_cli_catalog(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    torch.save(make_state(2), tmp_path / "b.pt")
    cli("ingest", tmp_path / "b.pt", "--run", "api")
    import lsdb

    same = lsdb.open_catalog(catalog.settings.database_url, catalog.settings.store_root)
    assert [c.id for c in same.checkpoints("api")] == [c.id for c in catalog.checkpoints.list("api")]
