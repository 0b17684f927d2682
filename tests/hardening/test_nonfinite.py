"""Checkpoints with NaN/Inf weights: flagged at ingest, listed, refused by analyses unless asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.ingest.conftest import make_state


def _lsdb(db: str, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsdb.cli.app", "--db", db, "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


def test_nonfinite_weights_are_flagged_and_refused_unless_asked(db_url: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    state = make_state(0, width=8)
    torch.save(state, tmp_path / "ok.pt")
    state["0.weight"][0, 0] = float("inf")
    torch.save(state, tmp_path / "nan.pt")
    ingest = _lsdb(db_url, store, "ingest", str(tmp_path / "ok.pt"), str(tmp_path / "nan.pt"), "--run", "r")
    assert ingest.returncode == 0, ingest.stderr
    assert "1 with NaN/Inf weights" in ingest.stderr and "NaN or Inf" in ingest.stdout
    listed = json.loads(_lsdb(db_url, store, "checkpoints", "--run", "r", "--format", "json").stdout)
    assert sorted(c["nonfinite"] for c in listed) == [False, True]
    bad = next(c["id"] for c in listed if c["nonfinite"])
    table = _lsdb(db_url, store, "checkpoints", "--run", "r")
    assert "NaN/Inf" in table.stdout
    refused = _lsdb(db_url, store, "run", "layer-norms", str(bad), "--inline")
    assert refused.returncode != 0
    lines = [ln for ln in refused.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "NaN or Inf" in lines[0] and "--allow-nonfinite" in lines[0]
    queued = _lsdb(db_url, store, "run", "layer-norms", str(bad))
    assert queued.returncode != 0 and "--allow-nonfinite" in queued.stderr
    allowed = _lsdb(db_url, store, "run", "layer-norms", str(bad), "--inline", "--allow-nonfinite")
    assert allowed.returncode == 0, allowed.stderr


def test_an_unexpected_database_error_prints_one_line_without_sql(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import IntegrityError

    def boom(*args: object, **kwargs: object) -> None:
        raise IntegrityError("INSERT INTO secrets VALUES (?)", ("hunter2",), Exception("NOT NULL constraint failed"))

    monkeypatch.setattr("lsdb.service.catalog.Catalog.runs", boom)
    out = cli("runs")
    assert out.exit_code != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "hunter2" not in out.stderr and "INSERT" not in out.stderr


def test_the_facade_carries_allow_nonfinite_in_the_request(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import lsdb
    from lsdb.errors import BadInput

    cat = lsdb.open_catalog(str(catalog.settings.database_url), catalog.settings.store_root)
    state = make_state(1)
    state["2.bias"][0] = float("inf")
    torch.save(state, tmp_path / "inf.pt")
    (outcome,) = cat.ingest([tmp_path / "inf.pt"], run="inf").outcomes
    assert outcome.checkpoint.nonfinite
    with pytest.raises(BadInput, match="NaN or Inf"):
        cat.run("layer-norms", outcome.checkpoint.id)
    with pytest.raises(BadInput, match="NaN or Inf"):
        cat.submit("layer-norms", outcome.checkpoint.id)
    job = cat.submit("layer-norms", outcome.checkpoint.id, allow_nonfinite=True)
    assert job.id is not None
    assert catalog.jobs.get(job.id).payload["request"]["allow_nonfinite"] is True
    assert cat.run("layer-norms", outcome.checkpoint.id, allow_nonfinite=True).scalars
