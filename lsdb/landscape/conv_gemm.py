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
  one-channel image): the kh·kw shifted copies of the input are stacked into the rows of a matrix
  (N·H_out·W_out, C_in·kh·kw) and multiplied with the weight in one product, whose rows come out in
  NHWC order. The stack depends on the input alone: `TapsConv` keeps it for an input it sees again
  (the evaluator's data at every point of a grid), so such a call is the product alone.

With ``bias=None`` each form returns the bare product, so that a caller can max-pool before it adds
the bias (`lsdb.landscape.fusion`: a per-channel constant and a ReLU commute with a maximum).

Measured on a 2-core Intel Xeon (6 Dec 2026, 2 threads) for simple_cnn over 1,797 digits: the first
convolution (1 -> 16 channels, 8x8, ReLU) 1.9 ms as taps against 2.8-3.0 ms for oneDNN's fused
channels-last kernel; the last (32 -> 32, 2x2) 0.27 ms dense plus 0.14 ms to build T against 1.15 ms.
With the stack kept and the pooling first, the first convolution, ReLU and max-pool took 0.88 ms
against 1.96 ms (the same bits); `fusion` now runs that pooled stage in oneDNN's blocked layout, faster
still, and keeps the taps form for convolutions without a pool.
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

#: Bytes of stacked inputs one `TapsConv` keeps for inputs it may see again (the oldest go first).
TAPS_KEPT_BYTES = 64 << 20


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
        with torch.inference_mode(False):  # a plain tensor, usable with autograd later too
            # image r of the identity is input entry r in NHWC order
            eye = torch.eye(n_in, dtype=torch.float64).view(n_in, h, w, c_in).permute(0, 3, 1, 2)
            codes = torch.arange(1, conv.weight.numel() + 1, dtype=torch.float64).view(conv.weight.shape)
            hit = F.conv2d(eye, codes, None, conv.stride, conv.padding, conv.dilation, conv.groups)  # type: ignore[arg-type]
            code = hit.permute(0, 2, 3, 1).reshape(n_in, -1).round().long()  # 0: no tap joins the two entries
            self.index = torch.where(code > 0, code - 1, conv.weight.numel())  # the last slot holds a zero
        self.h_out, self.w_out = hit.shape[2], hit.shape[3]

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
    return taps_product(stack_taps(conv, x), (x.shape[0], *_out_size(conv, *x.shape[2:])), weight, bias)


def stack_taps(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """The (N·H_out·W_out, C_in·kh·kw) matrix whose rows are the input windows of the output pixels (NHWC order)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(conv)
    n, c_in, h, w = x.shape
    h_out, w_out = _out_size(conv, h, w)
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    stacked = x.new_empty(n, h_out, w_out, c_in, kh, kw)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i * dh: i * dh + sh * (h_out - 1) + 1: sh, j * dw: j * dw + sw * (w_out - 1) + 1: sw]
            stacked[..., i, j].copy_(window.permute(0, 2, 3, 1))
    return stacked.view(n * h_out * w_out, c_in * kh * kw)


def taps_product(rows: Tensor, shape: tuple[int, int, int], weight: Tensor, bias: Tensor | None) -> Tensor:
    """The convolution of N images from their stacked inputs `rows` (`stack_taps`); `shape` is
    (N, H_out, W_out). Channels-last."""
    kernel = weight.reshape(weight.shape[0], rows.shape[1]).t()
    out = rows @ kernel if bias is None else torch.addmm(bias, rows, kernel)
    return out.view(*shape, -1).permute(0, 3, 1, 2)


class TapsConv:
    """`taps_conv` of one convolution that keeps the stacked inputs of what it has seen (up to
    `TAPS_KEPT_BYTES`): an input seen again, the same memory, shape and strides not modified since
    (its version counter), costs the product alone. The evaluator passes the same data at every point.
    Inputs that track gradients or have no version counter (inference tensors) are not kept."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self._kept: dict[tuple[object, ...], tuple[Tensor, int, Tensor]] = {}

    def __call__(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        shape = (x.shape[0], *_out_size(self.conv, *x.shape[2:]))
        return taps_product(self.rows(x), shape, weight, bias)

    def rows(self, x: Tensor) -> Tensor:
        """`stack_taps` of `x`, kept or made (and kept when it may be)."""
        key = (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, x.device)
        version = _version(x)
        kept = self._kept.get(key)
        if kept is not None and version is not None and kept[1] == version:
            return kept[2]
        if version is None or x.requires_grad:
            return stack_taps(self.conv, x)
        with torch.inference_mode(False):  # kept: a plain tensor, usable with autograd later too
            rows = stack_taps(self.conv, x)
        size = rows.numel() * rows.element_size()
        if size > TAPS_KEPT_BYTES:
            return rows
        self._kept.pop(key, None)
        while self._kept and size + sum(r.numel() * r.element_size() for _, _, r in self._kept.values()) \
                > TAPS_KEPT_BYTES:
            del self._kept[next(iter(self._kept))]
        self._kept[key] = (x, version, rows)  # x is held: its memory cannot go to another tensor meanwhile
        return rows


def _version(x: Tensor) -> int | None:
    try:
        return int(x._version)
    except RuntimeError:  # an inference tensor: no version counter
        return None
