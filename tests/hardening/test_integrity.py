"""Objects are verified when read for computation; a re-ingest repairs a corrupt copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tests.ingest.conftest import make_state


def _flip_one_bit(path: Path, offset: int = -5) -> None:
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def _lsdb(db: str, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsdb.cli.app", "--db", db, "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


def test_a_flipped_bit_stops_a_run_and_nothing_is_cached(db_url: str, tmp_path: Path) -> None:
    from lsdb.testing import open_db

    store = tmp_path / "store"
    torch.save(make_state(0, width=16), tmp_path / "w.pt")
    assert _lsdb(db_url, store, "ingest", str(tmp_path / "w.pt"), "--run", "r").returncode == 0
    cat = open_db(db_url, store)
    (ckpt,) = cat.checkpoints.list("r")
    _flip_one_bit(cat.objects.path(ckpt.blob_digest))
    run = _lsdb(db_url, store, "run", "layer-norms", "r:last", "--inline")
    assert run.returncode != 0
    lines = [ln for ln in run.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "corrupt" in lines[0] and "lsdb doctor" in lines[0], run.stderr
    assert cat.results.list() == []
    # re-ingesting the same weights repairs the stored copy (presence = verified content)
    again = _lsdb(db_url, store, "ingest", str(tmp_path / "w.pt"), "--run", "r")
    assert again.returncode == 0, again.stderr
    assert cat.objects.verify(ckpt.blob_digest) == "ok"
    assert _lsdb(db_url, store, "doctor").returncode == 0
    ok = _lsdb(db_url, store, "run", "layer-norms", "r:last", "--inline")
    assert ok.returncode == 0, ok.stderr
    assert len(cat.results.list()) == 1


def test_a_corrupt_tile_artifact_stops_the_merge(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from lsdb.analyses.runner import load_view
    from lsdb.store import CorruptObject
    from lsdb.testing import add_model_checkpoint

    add_model_checkpoint(catalog, "m", "mlp:widths=[4]", "digits")
    from lsdb.analyses.runner import AnalysisRequest, run_analysis

    result, _ = run_analysis(catalog, AnalysisRequest("layer-norms", ["m:last"]), device="cpu")
    _flip_one_bit(catalog.objects.path(result.artifact_digest), offset=len(
        catalog.objects.path(result.artifact_digest).read_bytes()) // 2)
    with pytest.raises(CorruptObject, match="lsdb doctor"):
        load_view(catalog, result, verify=True)
