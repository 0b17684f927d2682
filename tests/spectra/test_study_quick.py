"""`scripts/study_sharpness_spectra.py --quick` as a user runs it: exits 0 within a minute, writes its table,
JSON report and figures; and `scripts/bench_spectra.py` on a small model reports parity with weightwatcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, LSDB_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    env.pop("LSDB_EXTRA_PLUGINS", None)  # the script loads the plugin itself when lsdb does not
    return env


@pytest.mark.slow
def test_the_quick_study_runs_end_to_end(tmp_path: Path) -> None:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(SCRIPTS / "study_sharpness_spectra.py"), "--quick", "--figures",
                          str(tmp_path / "fig"), "--json", str(tmp_path / "report.json")], cwd=tmp_path,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert time.perf_counter() - start < 120  # < 60 s on an idle 2-core machine; slack for a busy one
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["rows"]) == 4 and set(report["spearman"]) == {"mean_alpha", "worst_case", "eps_sharpness",
                                                                      "lambda_max"}
    for row in report["rows"]:
        assert 0 <= row["test_error"] <= 1 and row["mean_alpha"] > 1 and row["worst_case"] >= 0
    for name in ("study_scatter", "esd", "alpha_layers", "alpha_trajectory", "sharpness_ascent"):
        assert (tmp_path / "fig" / f"spectra_{name}.png").stat().st_size > 1000
    assert "| mean_alpha |" in out.stdout


@pytest.mark.slow
def test_the_benchmark_reports_parity_and_a_ratio(tmp_path: Path) -> None:
    pytest.importorskip("weightwatcher")
    out = subprocess.run([sys.executable, str(SCRIPTS / "bench_spectra.py"), "--models",
                          "mlp:widths=[128,64]@digits", "--epochs", "1", "--repeats", "1", "--json",
                          str(tmp_path / "bench.json")], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    (res,) = report["results"]
    fitted = [p for p in res["parity"] if p["within_sigma"] is not None]
    assert fitted and all(p["within_sigma"] for p in fitted)
    assert all(p["log_norm_rel"] < 1e-6 and p["stable_rank_rel"] < 1e-6 for p in res["parity"])
    assert res["plain"]["ratio_wall_ww_over_lsdb_math"] > 0 and report["machine"]["cpus"] >= 1
