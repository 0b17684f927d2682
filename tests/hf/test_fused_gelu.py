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


def test_the_inference_form_is_the_same_function_and_autograd_keeps_torchs_kernel() -> None:
    """In inference mode (the evaluator) the GELU is x·σ(2u); elsewhere torch's kernel, twice differentiable."""
    import torch.nn.functional as F

    x = torch.linspace(-12.0, 12.0, 100_001, dtype=torch.float64)
    exact = 0.5 * x * (1.0 + torch.tanh((2.0 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    gelu = FusedGELUTanh()
    with torch.inference_mode():
        fast64, fast32 = gelu(x), gelu(x.float())
        x_bf16 = x.to(torch.bfloat16)
        assert torch.equal(gelu(x_bf16), F.gelu(x_bf16, approximate="tanh"))  # 16-bit: torch's kernel
    assert torch.allclose(fast64, exact, rtol=1e-12, atol=1e-15)
    assert (fast32.double() - exact).abs().max() <= 1e-6 * x.abs().max()
    assert not torch.equal(fast32, F.gelu(x.float(), approximate="tanh"))  # the other form did run
    with torch.no_grad():
        assert torch.equal(gelu(x.float()), F.gelu(x.float(), approximate="tanh"))
    probe = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(gelu, (probe,))


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
