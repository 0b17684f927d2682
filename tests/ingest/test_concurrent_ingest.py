"""Two processes ingesting the same files at once: exactly one blob and one row per weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tests.ingest.conftest import make_state


def test_two_processes_ingest_the_same_files(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "traj"
    folder.mkdir()
    distinct = 6
    for i in range(12):  # every set of weights appears twice under different names
        torch.save(make_state(i % distinct, width=32), folder / f"ckpt_{i:03d}.pt")
    store = tmp_path / "store"
    cmd = [
        sys.executable,
        "-m",
        "lsdb.cli.app",
        "--db",
        db_url,
        "--store",
        str(store),
        "ingest",
        str(folder),
        "--run",
        "shared",
        "--format",
        "json",
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-800:] for o in outs]

    from lsdb.testing import open_db as open_catalog

    cat = open_catalog(db_url, store)
    assert len(cat.checkpoints.list("shared")) == distinct
    assert len(cat.blobs.list()) == distinct
    assert len(list(cat.objects.iter_digests())) == distinct
    assert len(cat.runs.list()) == 1
