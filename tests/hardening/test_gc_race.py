"""`lsdb gc --older-than 0` racing repeated ingests of the same weights, with real processes:
no committed row ever loses its object, and `lsdb doctor` finds nothing missing at the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tests.ingest.conftest import make_state

HELPER = str(Path(__file__).with_name("gc_race_helpers.py"))


def test_gc_races_ingests_of_the_same_weights(db_url: str, tmp_path: Path) -> None:
    ckpt = tmp_path / "w.pt"
    torch.save(make_state(0, width=64), ckpt)
    store, stop = tmp_path / "store", tmp_path / "stop"
    env_cmd = [sys.executable, HELPER]
    collectors = [subprocess.Popen([*env_cmd, "collector", db_url, str(store), str(stop)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    ingester = subprocess.run([*env_cmd, "ingester", db_url, str(store), str(ckpt), "25", str(stop)],
                              capture_output=True, text=True, timeout=300)
    outs = [c.communicate(timeout=120) for c in collectors]
    assert [c.returncode for c in collectors] == [0, 0], [o[1].decode()[-800:] for o in outs]
    assert ingester.returncode == 0, ingester.stderr[-2000:]
    assert all(b"passes=" in o[0] for o in outs)

    cli = [sys.executable, "-m", "lsdb.cli.app", "--db", db_url, "--store", str(store)]
    gc = subprocess.run([*cli, "gc", "--older-than", "0"], capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stderr
    doctor = subprocess.run([*cli, "doctor"], capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "missing" not in doctor.stdout.replace("0 missing", "")
