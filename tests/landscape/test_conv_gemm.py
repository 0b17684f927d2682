"""`conv_gemm`: convolutions as one matrix product, against ``F.conv2d`` (float64: equal to rounding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lsdb.landscape import conv_gemm
from lsdb.landscape.conv_gemm import DenseConv, TapsConv, conv_form, taps_conv
from lsdb.landscape.flat_model import channels_last
from lsdb.landscape.fusion import FusedConv2d, onednn_available

# (C_in, C_out, H, W, kernel, stride, padding, dilation, groups)
DENSE = [
    (32, 32, 2, 2, 3, 1, 1, 1, 1),  # simple_cnn's last convolution on digits
    (4, 6, 3, 3, 3, 1, 1, 1, 1),
    (4, 6, 3, 3, 3, 2, 1, 1, 2),  # strided, grouped
    (3, 5, 2, 3, (3, 2), 1, (1, 0), 1, 1),  # rectangular kernel and map
    (2, 4, 1, 1, 3, 1, 1, 1, 1),  # a 1x1 map: only the centre tap
    (4, 4, 2, 2, 3, 1, 2, 2, 4),  # dilated, depthwise
]
TAPS = [
    (1, 16, 8, 8, 3, 1, 1, 1, 1),  # simple_cnn's first convolution on digits
    (1, 3, 7, 5, 3, 2, 1, 1, 1),  # strided, odd sizes
    (1, 4, 9, 9, 3, 1, 2, 2, 1),  # dilated
    (1, 2, 6, 6, (3, 1), 1, 0, 1, 1),  # no padding, rectangular
]


def _case(c_in: int, c_out: int, h: int, w: int, k: object, s: object, p: object, d: object, g: int,
          bias: bool) -> tuple[nn.Conv2d, torch.Tensor]:
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g, bias=bias).double()  # type: ignore[arg-type]
    return conv, torch.randn(5, c_in, h, w, dtype=torch.float64)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", DENSE)
def test_dense_form_is_the_convolution(case: tuple, bias: bool) -> None:  # type: ignore[type-arg]
    conv, x = _case(*case, bias=bias)
    assert conv_form(conv, x) == "dense"
    dense = DenseConv(conv, *x.shape[1:])
    with torch.no_grad():
        want = conv(x)
        for inputs in (x, channels_last(x)):
            got = dense(inputs, conv.weight, conv.bias)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        moved = conv.weight * 1.5  # the matrix follows the live weight
        torch.testing.assert_close(dense(x, moved, conv.bias), F.conv2d(x, moved, conv.bias, conv.stride,
                                   conv.padding, conv.dilation, conv.groups), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", TAPS)
def test_taps_form_is_the_convolution(case: tuple, bias: bool) -> None:  # type: ignore[type-arg]
    conv, x = _case(*case, bias=bias)
    assert conv_form(conv, x) == "taps"
    with torch.no_grad():
        for inputs in (x, channels_last(x)):
            got = taps_conv(conv, inputs, conv.weight, conv.bias)
            assert got.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(got, conv(x), rtol=1e-12, atol=1e-12)


def test_other_shapes_keep_onednn() -> None:
    conv = nn.Conv2d(16, 32, 3, padding=1)
    assert conv_form(conv, torch.zeros(1, 16, 4, 4)) is None  # a 4x4 map is larger than the kernel
    assert conv_form(nn.Conv2d(3, 16, 3, padding=1), torch.zeros(1, 3, 32, 32)) is None  # depth 27
    assert conv_form(nn.Conv2d(512, 512, 3, padding=1), torch.zeros(1, 512, 2, 2)) is None  # too large a matrix
    assert conv_form(nn.Conv2d(1, 4, 3, padding="same"), torch.zeros(1, 1, 8, 8)) is None


@pytest.mark.parametrize("relu", [True, False])
def test_fused_convolution_adds_and_rectifies_after_either_form(relu: bool) -> None:
    for case in (DENSE[0], TAPS[0]):
        conv, x = _case(*case, bias=True)
        bn = nn.BatchNorm2d(conv.out_channels).double().eval()
        with torch.no_grad():
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            want_plain = bn(conv(x))
            other = torch.randn_like(want_plain)
            want = want_plain + other
            want = want.relu() if relu else want
            fast = FusedConv2d(conv, bn, add=True, relu=relu, onednn=False)
            slow = FusedConv2d(conv, bn, add=True, relu=relu, onednn=False, gemm_forms=False)
            torch.testing.assert_close(fast(x, other), want, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(slow(x, other), want, rtol=1e-12, atol=1e-12)
            key = (tuple(x.shape[1:]), "cpu")
            assert fast._forms[key] is not None and slow._forms[key] is None


def test_taps_keeps_the_stack_of_an_input_seen_again_until_it_changes() -> None:
    conv, x = _case(*TAPS[0], bias=True)
    taps = TapsConv(conv)
    with torch.no_grad():
        first = taps(x, conv.weight, conv.bias)
        kept = taps.rows(x)
        assert taps.rows(x[:]) is kept  # a new view of the same memory, shape and strides
        torch.testing.assert_close(taps(x, conv.weight, conv.bias), first, rtol=0, atol=0)
        x[0].add_(1.0)  # the version counter moves: the stack is made again, from the new values
        assert taps.rows(x) is not kept
        torch.testing.assert_close(taps(x, conv.weight, conv.bias), conv(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(taps(x[1:], conv.weight, conv.bias), conv(x[1:]), rtol=1e-12, atol=1e-12)


def test_taps_keeps_no_more_than_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    conv, x = _case(*TAPS[0], bias=False)
    one = x.shape[0] * 8 * 8 * 9 * x.element_size()  # the stack of x
    monkeypatch.setattr(conv_gemm, "TAPS_KEPT_BYTES", 2 * one)
    taps = TapsConv(conv)
    inputs = [x.clone() for _ in range(3)]
    for inp in inputs:
        taps.rows(inp)
    assert {key[0] for key in taps._kept} == {inputs[1].data_ptr(), inputs[2].data_ptr()}  # the oldest went
    assert taps.rows(inputs[2]) is taps.rows(inputs[2])
    with torch.inference_mode():  # an inference tensor has no version counter: never kept
        fresh = x.clone()
        assert taps.rows(fresh) is not taps.rows(fresh)
    grad = x.clone().requires_grad_(True)
    assert taps.rows(grad) is not taps.rows(grad)
    monkeypatch.setattr(conv_gemm, "TAPS_KEPT_BYTES", one - 1)
    small = TapsConv(conv)
    assert small.rows(x) is not small.rows(x) and not small._kept


def _pool_case(case: tuple, dtype: torch.dtype) -> tuple[nn.Conv2d, nn.BatchNorm2d, torch.Tensor]:  # type: ignore[type-arg]
    conv, x = _case(*case, bias=True)
    bn = nn.BatchNorm2d(conv.out_channels).double().eval()
    with torch.no_grad():
        bn.weight.uniform_(-1.5, 1.5)  # negative scales too: the bias is added after the maximum
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return conv.to(dtype), bn.to(dtype), x.to(dtype)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("case", [TAPS[0], TAPS[1], (32, 32, 2, 2, 3, 1, 1, 1, 1), (16, 8, 4, 4, 3, 1, 1, 1, 1)])
def test_pooled_convolution_is_the_pool_of_the_convolution(case: tuple, relu: bool) -> None:  # type: ignore[type-arg]
    """Pooling before the bias and ReLU (either matrix form) gives max_pool2d(relu(bn(conv(x))), 2)."""
    conv, bn, x = _pool_case(case, torch.float64)
    fused = FusedConv2d(conv, bn, add=False, relu=relu, onednn=False, pool=True)
    with torch.no_grad():
        want = bn(conv(x))
        want = F.max_pool2d(want.relu() if relu else want, 2)
        for inputs in (x, channels_last(x)):
            torch.testing.assert_close(fused(inputs), want, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not onednn_available(), reason="needs oneDNN")
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("case", [(16, 32, 4, 4, 3, 1, 1, 1, 1), (3, 8, 9, 7, 3, 2, 1, 1, 1),
                                  (8, 8, 6, 6, 3, 1, 1, 1, 2)])
def test_blocked_pooled_convolution_is_the_pool_of_the_convolution(case: tuple, relu: bool) -> None:  # type: ignore[type-arg]
    """oneDNN's blocked convolution and pooling (float32, no autograd) against float64 ``F.conv2d``."""
    conv64, bn64, x64 = _pool_case(case, torch.float64)
    want = bn64(conv64(x64)).detach()
    want = F.max_pool2d(want.relu() if relu else want, 2)
    conv, bn, x = _pool_case(case, torch.float32)
    fused = FusedConv2d(conv, bn, add=False, relu=relu, onednn=True, pool=True)
    assert fused._form(x) is None  # neither matrix form: oneDNN's kernel
    with torch.inference_mode():
        for inputs in (x, channels_last(x)):
            got = fused(inputs)
            assert got.dtype == torch.float32 and got.layout == torch.strided
            torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    with torch.enable_grad():  # with autograd on, the plain path
        got = fused(x.requires_grad_(True))
        assert got.requires_grad
        torch.testing.assert_close(got.detach().double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not onednn_available(), reason="needs oneDNN")
@pytest.mark.parametrize("pool", [True, False])
@pytest.mark.parametrize("case", [TAPS[0], (32, 32, 2, 2, 3, 1, 1, 1, 1), (16, 8, 4, 4, 3, 1, 1, 1, 1)])
def test_a_blocked_input_gives_what_its_plain_form_gives(case: tuple, pool: bool) -> None:  # type: ignore[type-arg]
    """Every path of a fused convolution (blocked, matrix forms, oneDNN's plain kernel, with an add) takes
    the oneDNN blocked tensor an earlier fused convolution may pass on."""
    conv, bn, x = _pool_case(case, torch.float32)
    with torch.inference_mode():
        for add in (False, True):
            fused = FusedConv2d(conv, bn, add=add, relu=True, onednn=True, pool=pool and not add)
            other = torch.randn_like(bn(conv(x))) if add else None
            want = fused(x, other)
            got = fused(x.to_mkldnn(), other)
            assert not got.is_mkldnn
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_what_inference_mode_built_serves_autograd_later() -> None:
    """An index or a kept stack made under inference mode is a plain tensor: gradients flow through it later."""
    for case, make in ((TAPS[0], TapsConv), (DENSE[0], lambda c: DenseConv(c, *DENSE[0][:1], *DENSE[0][2:4]))):
        conv, x = _case(*case, bias=True)
        form = make(conv)
        with torch.inference_mode():
            form(x, conv.weight, conv.bias)
        out = form(x, conv.weight, conv.bias)
        (grad,) = torch.autograd.grad(out.square().sum(), conv.weight)
        (want,) = torch.autograd.grad(conv(x).square().sum(), conv.weight)
        torch.testing.assert_close(grad, want, rtol=1e-10, atol=1e-10)
