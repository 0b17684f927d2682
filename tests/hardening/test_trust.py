"""Specs naming untrusted modules run nothing: at ingest, `lsdb run --inline`, and in a worker
whose job's run carries such a spec written straight into the catalog (a hostile user)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HOSTILE = "os:system:command=touch {}"


def _lsdb(db: str, store: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LSDB_TRUSTED_MODULES"}
    return subprocess.run([sys.executable, "-m", "lsdb.cli.app", "--db", db, "--store", str(store), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _digits_checkpoint(path: Path) -> None:
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    torch.save(build_model("mlp:widths=[4]", data.input_shape, data.num_classes, seed=0).state_dict(), path)


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_hostile_specs_are_refused_everywhere(db_url: str, tmp_path: Path) -> None:
    store, marker = tmp_path / "store", tmp_path / "pwned"
    hostile = HOSTILE.format(marker)
    _digits_checkpoint(tmp_path / "w.pt")

    ingest = _lsdb(db_url, store, "ingest", str(tmp_path / "w.pt"), "--run", "evil", "--model", "mlp:widths=[4]",
                   "--dataset", hostile)
    assert ingest.returncode != 0 and not marker.exists()
    assert "module 'os' is not trusted" in _one_line(ingest.stderr) and "LSDB_TRUSTED_MODULES" in ingest.stderr

    ok = _lsdb(db_url, store, "ingest", str(tmp_path / "w.pt"), "--run", "r", "--model", "mlp:widths=[4]",
               "--dataset", "digits")
    assert ok.returncode == 0, ok.stderr
    inline = _lsdb(db_url, store, "run", "interpolate", "r:last", "r:last", "-p", "steps=3", "--dataset", hostile,
                   "--inline")
    assert inline.returncode != 0 and not marker.exists()
    assert "not trusted" in _one_line(inline.stderr)

    queued = _lsdb(db_url, store, "run", "interpolate", "r:last", "r:last", "-p", "steps=3", "--format", "json")
    assert queued.returncode == 0, queued.stderr
    # a hostile user with write access to the catalog rewrites the run's dataset spec
    from sqlalchemy import text

    from lsdb.testing import open_db

    cat = open_db(db_url, store)
    with cat.db.write() as conn:
        conn.execute(text("UPDATE runs SET dataset_spec = :s WHERE name = 'r'"),
                     {"s": json.dumps({"name": "os:system", "kwargs": {"command": f"touch {marker}"}})})
    stored_inline = _lsdb(db_url, store, "run", "interpolate", "r:last", "r:last", "-p", "steps=4", "--inline")
    assert stored_inline.returncode != 0 and not marker.exists()
    assert "not trusted" in _one_line(stored_inline.stderr)

    worker = _lsdb(db_url, store, "worker", "--device", "cpu", "--idle-exit", "1", "--poll", "0.2")
    assert worker.returncode == 0, worker.stderr
    (job,) = cat.jobs.list()
    assert job.status == "failed" and not marker.exists()
    assert "module 'os' is not trusted" in (job.error_message or "") and "\n" not in (job.error_message or "").strip()
    assert cat.results.list() == []
