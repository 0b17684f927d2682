"""GPT-2's ``gelu_new`` replaced by torch's fused tanh GELU: the same function, the same model outputs."""

from __future__ import annotations

import torch

from lsdb.models.hf import FusedGELUTanh
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2


def test_fused_gelu_equals_transformers_gelu_new() -> None:
    from transformers.activations import NewGELUActivation

    x = torch.linspace(-12.0, 12.0, 100_001, dtype=torch.float64)
    fused, reference = FusedGELUTanh()(x), NewGELUActivation()(x)
    assert torch.allclose(fused, reference, rtol=1e-6, atol=1e-12)
    x32 = x.float()
    assert (FusedGELUTanh()(x32) - NewGELUActivation()(x32)).abs().max() <= 1e-6 * x32.abs().max()


def test_hf_model_uses_the_fused_gelu_and_matches_transformers_own_model() -> None:
    from transformers import AutoModelForCausalLM
    from transformers.activations import NewGELUActivation

    model = build_model(TINY_GPT2, (64,), 259, seed=0).eval()
    kinds = [type(m) for m in model.modules()]
    assert FusedGELUTanh in kinds and NewGELUActivation not in kinds
    plain = AutoModelForCausalLM.from_config(model.config, attn_implementation="eager").eval()
    assert any(type(m) is NewGELUActivation for m in plain.modules())
    plain.load_state_dict(model.state_dict())
    x = torch.randint(0, 259, (3, 64), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours, theirs = model(x), plain(x).logits[:, :-1]
    assert (ours - theirs).abs().max() <= 1e-6 * theirs.abs().max()
