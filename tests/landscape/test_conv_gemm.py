"""`conv_gemm`: convolutions as one matrix product, against ``F.conv2d`` (float64: equal to rounding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lsdb.landscape.conv_gemm import DenseConv, conv_form, taps_conv
from lsdb.landscape.flat_model import channels_last
from lsdb.landscape.fusion import FusedConv2d

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
