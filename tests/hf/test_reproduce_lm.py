"""`scripts/reproduce_lm.py --quick`: the whole language-model reproduction at toy size, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reproduce_lm.py"


def test_reproduce_lm_quick_writes_its_figures_and_summary(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = tmp_path / "figures"
    for name in ("lm_trajectory_pca.png", "lm_sharpness.png", "lm_block0_attn.png", "lm_block0_mlp.png",
                 "lm_interpolate_ft-a_vs_ft-b.png", "lm_interpolate_parent_vs_independent.png"):
        assert (figures / name).stat().st_size > 0, name
    summary = json.loads((figures / "summary.json").read_text())
    assert set(summary["barriers"]) == {"ft-a vs ft-b", "parent vs ft-a", "parent vs ft-b", "parent vs independent"}
    assert [r["step"] for r in summary["sharpness"]] == [0, 4, 8]
