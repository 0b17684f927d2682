"""`scripts/bench_lm.py --quick`: both sides run in their own processes and compute the same surface."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_lm.py"


@pytest.mark.slow  # three fresh processes importing torch and transformers: ~15 s idle, minutes when loaded
def test_bench_lm_quick_sides_agree(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_lm", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    summary = bench.main(["--quick"])
    printed = capsys.readouterr().out
    assert summary["points"] == 9
    assert summary["max_rel_diff"] < 1e-5  # lsdb's evaluator and the load_state_dict loop: the same 9 losses
    assert f"max relative difference of the 9 losses (each lsdb side vs the loop): {summary['max_rel_diff']:.2e}" \
        in printed
    assert printed.count("load average at") == 2 and "memory budget" in printed
    for side in ("lsdb", "loop", "lsdb-gelu_new"):
        assert summary[side]["wall"] > 0 and summary[side]["cpu"] > 0 and summary[side]["extra_mb"] >= 0
