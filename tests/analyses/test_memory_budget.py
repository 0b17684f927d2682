"""The pass budget an analysis' evaluator and Hessian plan with: from the device and the memory the
machine has (`Context.memory_budget`), and a smaller budget changes how passes are split, never the
numbers."""

from __future__ import annotations

import pytest
import torch

from lsdb.analyses.context import CPU_PASS_BUDGET, MIN_PASS_BUDGET, Context
from lsdb.models import build_model

MLP, DIGITS = {"name": "mlp", "kwargs": {"widths": [32]}}, {"name": "digits", "kwargs": {}}


def _context(device: str = "cpu") -> Context:
    return Context(device=torch.device(device), seed=0, dtype=torch.float32, model_spec=MLP, dataset_spec=DIGITS,
                   loss="cross_entropy")


@pytest.mark.parametrize(("have", "budget"), [("64G", CPU_PASS_BUDGET), ("1G", 256 * 2**20), ("100K", MIN_PASS_BUDGET)])
def test_a_cpu_budget_is_the_default_or_a_quarter_of_what_is_available(monkeypatch: pytest.MonkeyPatch, have: str,
                                                                      budget: int) -> None:
    monkeypatch.setenv("LSDB_MAX_MEMORY", have)
    assert _context().memory_budget() == budget
    assert _context().memory_budget(cpu_default=2**40) == max(MIN_PASS_BUDGET, {"64G": 16 * 2**30, "1G": 2**28,
                                                                              "100K": 25 * 2**10}[have])


def test_a_small_budget_splits_the_passes_and_gives_the_same_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _context()
    data_x = ctx.data("train")[0]
    model = build_model(MLP, (64,), 10, seed=0)
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    points = theta + 0.05 * torch.randn(5, theta.numel(), generator=torch.Generator().manual_seed(0))
    roomy = ctx.evaluator(model)
    monkeypatch.setenv("LSDB_MAX_MEMORY", "4M")  # a 1 MiB pass budget: fewer examples a pass than the split
    tight = ctx.evaluator(model)
    assert (roomy.memory_budget, tight.memory_budget) == (CPU_PASS_BUDGET, MIN_PASS_BUDGET)
    assert tight._chunking(5, theta.numel())[1] < len(data_x) <= roomy._chunking(5, theta.numel())[1]
    assert torch.allclose(tight.at_points(points).loss, roomy.at_points(points).loss, rtol=1e-6, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_budget_is_half_of_the_free_device_memory() -> None:
    free, _ = torch.cuda.mem_get_info(torch.device("cuda"))
    budget = _context("cuda").memory_budget()
    assert MIN_PASS_BUDGET <= budget <= max(MIN_PASS_BUDGET, free // 2 + 2**20)
