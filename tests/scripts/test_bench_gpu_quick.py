"""`scripts/bench_gpu.py --quick`: the GPU benchmark's code, run on the CPU (its figures matter on a GPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_gpu.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.slow  # the digits MLP and a tiny GPT-2, every method once: ~6 s idle
def test_quick_run_reports_every_method_with_losses_equal_to_per_point(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu.json"
    report = _load().main(["--quick", "--device", "cpu", "--repeats", "1", "--only", "mlp,gpt", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["problems"]) == {"mlp", "gpt"}
    for name, problem in report["problems"].items():
        methods = problem["methods"]
        assert set(methods) == {"per_point", "batched, eager", "batched, bf16"}, name
        assert methods["per_point"]["speedup"] == 1.0 and methods["per_point"]["max_rel_error"] == 0.0
        assert methods["batched, eager"]["max_rel_error"] < 1e-5  # vmapped float32: the same losses
        assert 0.0 < methods["batched, bf16"]["max_rel_error"] < 1e-2  # other arithmetic, and it says so
        assert all(m["seconds"] > 0 and not m["graphed"] for m in methods.values())  # no graphs on a CPU
    printed = capsys.readouterr().out
    assert "## mlp: 5x5 = 25 points x 1797 examples on cpu" in printed and "best float32 batched" in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_asking_for_cuda_without_it_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        _load().main(["--quick", "--device", "cuda"])
    assert stop.value.code == 2
    assert "this machine has no CUDA device; run with --device cpu" in capsys.readouterr().err
