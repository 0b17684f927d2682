"""The memory estimate checked before work starts: its arithmetic, the refusal, the CLI, and its
soundness against the peak a real analysis measures in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lsdb
from lsdb.errors import BadInput
from lsdb.testing import add_model_checkpoint, open_db

ROOT = Path(__file__).resolve().parents[2]
SPEC = "mlp:widths=[64,32]"


@pytest.fixture
def cat(sqlite_url: str, store_root: Path) -> lsdb.Catalog:
    db = open_db(sqlite_url, store_root)
    add_model_checkpoint(db, "m", SPEC, "digits")
    add_model_checkpoint(db, "n", SPEC, "digits", seed=1)
    return lsdb.open_catalog(sqlite_url, store_root)


def test_the_estimate_is_copies_times_one_copy_plus_the_arrays(cat: lsdb.Catalog) -> None:
    n_params = cat.checkpoints("m")[0].n_params
    need = cat.estimate("hessian", "m:last", max_iter=40)
    assert need.copies == 15 + 40 and need.param_bytes == 4 * n_params and need.array_bytes == 0
    assert need.total == 55 * 4 * n_params and need.fits
    assert cat.estimate("hessian", "m:last", max_iter=40, dtype="float64").param_bytes == 8 * n_params
    assert cat.estimate("hessian", "m:last", max_iter=40, density=True, slq_steps=30).copies == 15 + 40 + 30
    grid = cat.estimate("surface", "m:last", xnum=51, ynum=51)
    assert grid.copies == 8 and grid.array_bytes > 0
    assert cat.estimate("surface", "center=m:last", "others=n:last", directions="checkpoints").copies == 8
    assert cat.estimate("interpolate", "m:last", "n:last").copies == 8
    assert cat.estimate("merge", "m:last", "n:last").copies == 6 + 3 * 2  # grows with the inputs


def test_a_request_over_the_limit_is_refused_before_any_work(cat: lsdb.Catalog,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    need = cat.estimate("hessian", "m:last", max_iter=100)
    monkeypatch.setenv("LSDB_MAX_MEMORY", str(need.total - 1))
    with pytest.raises(BadInput, match=r"hessian needs about .* \(115 parameter copies of .*\) of memory for these "
                                       r"parameters, more than this machine has available .*fewer inputs or "
                                       r"iterations.*LSDB_MAX_MEMORY") as err:
        cat.run("hessian", "m:last", max_iter=100, device="cpu")
    assert "\n" not in str(err.value) and cat.results() == []
    monkeypatch.setenv("LSDB_MAX_MEMORY", str(need.total))
    assert cat.run("hessian", "m:last", max_iter=100, trace=False, device="cpu").scalars["lambda_max"] > 0


def test_the_cli_prints_the_estimate_and_runs_nothing(cli, cat: lsdb.Catalog,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = cli("run", "hessian", "m:last", "-p", "max_iter=20", "--estimate")
    assert out.exit_code == 0 and "hessian needs about" in out.stdout and "35 parameter copies" in out.stdout
    assert "fits" in out.stdout
    out = cli("run", "hessian", "m:last", "-p", "max_iter=20", "--estimate", "--format", "json")
    row = json.loads(out.stdout)
    assert row["copies"] == 35 and row["fits"] is True and row["bytes"] == 35 * row["param_bytes"]
    monkeypatch.setenv("LSDB_MAX_MEMORY", "1K")
    out = cli("run", "hessian", "m:last", "-p", "max_iter=20", "--estimate")
    assert out.exit_code == 1 and "does NOT fit" in out.stdout
    assert cat.results() == [] and cat.jobs() == []


@pytest.mark.slow
@pytest.mark.parametrize("label", ["surface", "surface checkpoints", "hessian k=2 it=30", "interpolate"])
def test_the_estimate_bounds_the_measured_peak(tmp_path: Path, label: str) -> None:
    """scripts/bench_memory.py in a fresh process, with every block of 128 KiB or more unmapped when freed
    (the resident set follows the live tensors): peak <= estimate + one pass's activations, and the
    estimate is not loose by more than 2x (15 MB a copy: well above the resident set's noise)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_memory
    finally:
        sys.path.pop(0)
    bench_memory.build(tmp_path, runs="abc", trajectories=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_memory.py"), "--one", label, "--folder",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["measured"] <= row["estimate"] + row["activations"], row
    assert row["estimate"] <= 2 * row["measured"], row
