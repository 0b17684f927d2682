"""The evaluator's cost probe counts transformers' matrix-product layers (GPT-2's Conv1D, weight (in, out))
like nn.Linear: its per-pass FLOPs decide between per-point passes and vmap over points on a CPU."""

from __future__ import annotations

import torch

from lsdb.landscape import Evaluator
from lsdb.landscape.costs import probe_costs
from lsdb.models import build_model
from tests.hf.conftest import TINY_GPT2


def test_gpt2_flops_are_its_matrix_products() -> None:
    vocab, t, h, layers = 40, 16, 32, 2
    model = build_model(TINY_GPT2, (t,), vocab, seed=0).eval()
    _, flops = probe_costs(model, torch.randint(0, vocab, (2, t)))
    per_token = layers * (3 * h * h + h * h + 4 * h * h + 4 * h * h) + h * vocab  # qkv, proj, fc, mlp proj; head
    assert flops == 2 * t * per_token


def test_a_10m_gpt2_is_evaluated_one_point_at_a_time_on_a_cpu() -> None:
    """11 GFLOP a pass is far above the batching limit: vmap over points measured 145 ms a point against
    119 per point for scripts/bench_lm.py's model (2 threads); it was chosen when Conv1D counted 0."""
    spec = "hf:config=gpt2,n_layer=6,n_embd=384,n_head=6,n_positions=128"
    model = build_model(spec, (128,), 259, seed=0).eval()
    x = torch.randint(0, 259, (4, 128))
    ev = Evaluator(model, x, x[:, 1:], loss="token_cross_entropy")
    assert ev.strategy == "per_point" and ev.flops_per_example > 2e9
