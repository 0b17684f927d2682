"""Two convolution shapes that one matrix product computes faster than oneDNN's direct kernels on a CPU.

Used by `lsdb.landscape.fusion.FusedConv2d` in the evaluator's per-point CPU passes; each returns the
convolution's output in channels-last layout, equal to ``F.conv2d`` up to float rounding:

* **dense**: a map no larger than the kernel (H·W ≤ kh·kw, e.g. 3x3 over 2x2): the convolution is a
  linear map with no more multiply-adds than the convolution itself, so it runs as one product of the
  flattened NHWC input with its matrix T (C_in·H·W, H_out·W_out·C_out). T is gathered from the live
  weight at every call through an index found once per input shape by convolving the identity with
  the weight entries' own numbers (any stride, padding, dilation and groups). Only where T has at most
  `DENSE_MAX_ENTRIES` entries (the gather is then a few microseconds).
* **taps** (im2col): an inner dimension C_in·kh·kw below `TAPS_MAX_DEPTH` (a 3x3 convolution of a
  one-channel image): the kh·kw shifted copies of the input are stacked and multiplied with the weight
  in one product, (N·H_out·W_out, C_in·kh·kw) x (C_in·kh·kw, C_out), whose rows come out in NHWC order.

Measured on a 2-core Intel Xeon (6 Dec 2026, 2 threads) for simple_cnn over 1,797 digits: the first
convolution (1 -> 16 channels, 8x8, ReLU) 1.9 ms as taps against 2.8-3.0 ms for oneDNN's fused
channels-last kernel; the last (32 -> 32, 2x2) 0.27 ms dense plus 0.14 ms to build T against 1.15 ms.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: `dense` only for matrices with at most this many entries.
DENSE_MAX_ENTRIES = 2**18

#: `taps` only for convolutions whose inner dimension C_in·kh·kw is below this (one AVX-512 vector of floats).
TAPS_MAX_DEPTH = 16


def conv_form(conv: nn.Conv2d, x: Tensor) -> str | None:
    """``"dense"``, ``"taps"`` or None (oneDNN's own kernel) for `conv` on an input shaped like `x`."""
    if x.dim() != 4 or conv.padding_mode != "zeros" or isinstance(conv.padding, str) or x.device.type != "cpu":
        return None
    (kh, kw), (h, w) = conv.kernel_size, x.shape[2:]
    c_in, c_out = conv.in_channels, conv.out_channels
    h_out, w_out = _out_size(conv, h, w)
    if h_out < 1 or w_out < 1:
        return None
    if h * w <= kh * kw and c_in * h * w * h_out * w_out * c_out <= DENSE_MAX_ENTRIES:
        return "dense"
    if conv.groups == 1 and c_in * kh * kw < TAPS_MAX_DEPTH:
        return "taps"
    return None


def _geometry(conv: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Kernel size, stride, padding and dilation as pairs (padding is numeric here: `conv_form` checks it)."""
    pairs = (conv.kernel_size, conv.stride, cast(tuple[int, int], conv.padding), conv.dilation)
    return cast(tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]], pairs)


def _out_size(conv: nn.Conv2d, h: int, w: int) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(conv)
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


class DenseConv:
    """The dense form of one convolution for one input shape (C_in, H, W): the index of T's entries."""

    def __init__(self, conv: nn.Conv2d, c_in: int, h: int, w: int) -> None:
        n_in = c_in * h * w
        # image r of the identity is input entry r in NHWC order
        eye = torch.eye(n_in, dtype=torch.float64).view(n_in, h, w, c_in).permute(0, 3, 1, 2)
        codes = torch.arange(1, conv.weight.numel() + 1, dtype=torch.float64).view(conv.weight.shape)
        hit = F.conv2d(eye, codes, None, conv.stride, conv.padding, conv.dilation, conv.groups)  # type: ignore[arg-type]
        self.h_out, self.w_out = hit.shape[2], hit.shape[3]
        code = hit.permute(0, 2, 3, 1).reshape(n_in, -1).round().long()  # 0: no tap joins the two entries
        self.index = torch.where(code > 0, code - 1, conv.weight.numel())  # the last slot holds a zero

    def __call__(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        n = x.shape[0]
        entries = torch.cat([weight.reshape(-1), weight.new_zeros(1)])
        matrix = entries[self.index]
        flat = x.permute(0, 2, 3, 1).reshape(n, -1)  # a view when x is channels-last
        if bias is None:
            out = flat @ matrix
        else:
            out = torch.addmm(bias.repeat(self.h_out * self.w_out), flat, matrix)
        return out.view(n, self.h_out, self.w_out, -1).permute(0, 3, 1, 2)


def taps_conv(conv: nn.Conv2d, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The taps form: the stacked shifted inputs times the weight, in one product."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(conv)
    n, c_in, h, w = x.shape
    h_out, w_out = _out_size(conv, h, w)
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    stacked = x.new_empty(c_in, kh, kw, n, h_out, w_out)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh: i * dh + sh * (h_out - 1) + 1: sh, j * dw: j * dw + sw * (w_out - 1) + 1: sw]
            stacked[:, i, j].copy_(window.transpose(0, 1))
    depth = c_in * kh * kw
    rows = stacked.view(depth, n * h_out * w_out).t()
    kernel = weight.reshape(weight.shape[0], depth).t()
    out = rows @ kernel if bias is None else torch.addmm(bias, rows, kernel)
    return out.view(n, h_out, w_out, -1).permute(0, 3, 1, 2)
