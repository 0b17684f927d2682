"""`float32_math`: float32 on CUDA is IEEE float32 (convolutions included) unless TF32 is asked for by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lsdb.landscape import Evaluator, allow_tf32, check_precision, float32_math
from lsdb.landscape.float32_math import pinned_float32, tf32_allowed


def _flags() -> tuple[str, str]:
    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision


@pytest.fixture(autouse=True)
def _torch_defaults():  # type: ignore[no-untyped-def]
    saved = _flags()
    # PyTorch's own defaults: IEEE matmuls, TF32 convolutions; the test starts from those
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = "ieee", "tf32"
    yield
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved


def test_cuda_work_is_pinned_to_ieee_and_the_defaults_come_back() -> None:
    with float32_math("cuda"):
        assert _flags() == ("ieee", "ieee")
    assert _flags() == ("ieee", "tf32")


def test_tf32_only_inside_allow_tf32_and_only_while_it_lasts() -> None:
    with allow_tf32():
        assert tf32_allowed()
        with float32_math(torch.device("cuda", 0)):
            assert _flags() == ("tf32", "tf32")
        with allow_tf32():
            pass
        assert tf32_allowed()  # a nested block does not end the outer one
    assert not tf32_allowed()
    with float32_math("cuda"):
        assert _flags() == ("ieee", "ieee")


def test_flags_come_back_when_the_work_fails() -> None:
    with pytest.raises(RuntimeError, match="boom"), float32_math("cuda"):
        raise RuntimeError("boom")
    assert _flags() == ("ieee", "tf32")


def test_a_cpu_leaves_the_flags_alone() -> None:
    with allow_tf32(), float32_math("cpu"):
        assert _flags() == ("ieee", "tf32")


class _Worker:
    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    @pinned_float32
    def flags(self, tag: str) -> tuple[str, str, str]:
        return (*_flags(), tag)


def test_pinned_methods_run_inside_float32_math_on_cuda_only() -> None:
    assert _Worker("cuda").flags("a") == ("ieee", "ieee", "a")
    assert _Worker("cpu").flags("b") == ("ieee", "tf32", "b")
    with allow_tf32():
        assert _Worker("cuda").flags("c") == ("tf32", "tf32", "c")
    assert _flags() == ("ieee", "tf32")


def test_tf32_needs_cuda_and_float32() -> None:
    with pytest.raises(ValueError, match="tf32 needs a CUDA device.*use bf16 or float32"):
        check_precision(torch.float32, "cpu", "tf32")
    with pytest.raises(ValueError, match="tf32 needs a float32 evaluation.*float64"):
        check_precision(torch.float64, "cuda", "tf32")
    with pytest.raises(ValueError, match="precision must be one of float32, bf16, tf32"):
        check_precision(torch.float32, "cpu", "fp8")
    check_precision(torch.float32, "cuda", "tf32")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_float32_cnn_on_cuda_matches_float64_to_float32_rounding() -> None:
    """With PyTorch's default TF32 convolutions the loss would be off by ~1e-3 relative; pinned, by ~1e-6."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3),
                              torch.nn.Flatten(), torch.nn.LazyLinear(10))
    x, y = torch.randn(256, 3, 16, 16), torch.randint(0, 10, (256,))
    net(x[:1])
    with torch.no_grad():
        exact = float(F.cross_entropy(net.double()(x.double()), y))
    net.float()
    loss = float(Evaluator(net, x, y, device="cuda").at_points(
        torch.nn.utils.parameters_to_vector(net.parameters()).unsqueeze(0)).loss[0])
    assert abs(loss - exact) <= 1e-5 * abs(exact)
