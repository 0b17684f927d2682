"""Inference-time graph rewrites for the evaluator's per-point CPU passes: less work outside the convolutions.

A per-point pass over a convolutional network spends much of its time outside the convolutions:
BatchNorm, ReLU, residual adds and max-pooling each read and write a whole activation tensor.
`fuse` traces the evaluator's private model copy with ``torch.fx`` and rewrites one pattern,
exact up to float rounding:

* ``Conv2d [-> BatchNorm2d (running statistics)] [-> + other] [-> ReLU]`` becomes one
  `FusedConv2d`: BatchNorm is folded into the convolution's weight and bias at every call (from
  the live parameters and buffers, so moving the model to another point needs nothing more), and
  the add and the ReLU run inside oneDNN's convolution as post-ops
  (``torch.ops.mkldnn._convolution_pointwise``) where oneDNN is available, in place otherwise.
  Two shapes oneDNN's direct kernels handle poorly run as one matrix product instead
  (`lsdb.landscape.conv_gemm`: a map no larger than the kernel, and a one-channel 3x3 input).

Two pooling layers are replaced by exact equivalents that are cheaper on channels-last tensors
(the evaluator's per-point CPU layout):

* ``MaxPool2d(2)`` becomes `MaxPool2x2`: on a channels-last input with even height and width, the
  maximum of the two rows of each window, then of the two columns, over contiguous NHWC views (two
  ``torch.maximum``; a maximum is exact, so the values are the same). On a 6 Dec 2026 Intel Xeon
  (2 threads) it took 0.53 / 0.24 / 0.05 ms against ``F.max_pool2d``'s 1.21 / 0.42 / 0.10 ms for
  simple_cnn's three pools over 1,797 digits (``F.max_pool2d`` also writes the window indices there);
  any other input goes to ``F.max_pool2d``.
  A `FusedConv2d` without an add whose output only this pool reads takes the pool in (``pool=True``).
  When no gradient is recorded (float32, oneDNN), the convolution and the pool then run in oneDNN's
  blocked layout (``Tensor.to_mkldnn``: ``torch.mkldnn_convolution`` with its bias, then
  ``torch.mkldnn_max_pool2d`` and the ReLU, which commutes with the maximum), and the result stays
  blocked where the only reader is another fused convolution (``blocked_out``); every path of a
  `FusedConv2d` takes a blocked input. On that Intel Xeon, for simple_cnn over 1,797 digits: the
  16 -> 32 convolution over 4x4 maps took 0.92 ms blocked against 1.84 ms in oneDNN's channels-last
  kernel and 1.38 ms channels-first; the first two conv-ReLU-pool stages 3.6 against 5.0 ms. A map no
  larger than the kernel keeps its dense matrix form (0.69 against 0.92 ms blocked), pooled before its
  bias and ReLU (a maximum commutes with both), so that they touch a quarter of the values.
* ``AdaptiveAvgPool2d(1)`` becomes `GlobalAvgPool`, which returns a 1 x 1 map as it is (the mean
  of one value is that value; ``aten::mean`` spent 0.19 ms a pass on it) and pools anything else.

Nothing else changes: a model ``torch.fx`` cannot trace (data-dependent control flow, most
transformers models) is left as it is.

On ResNet-20 (torch.profiler, one thread) BatchNorm and ReLU took 45 % of a per-point pass. The
caller checks the rewritten module against the original on a few examples before using it
(`Evaluator`), so a rewrite that does not hold for a model is never used silently.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from lsdb.landscape import conv_gemm

_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_)
_ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)


def onednn_available() -> bool:
    """oneDNN's fused convolution post-ops can be called (CPU builds of torch with MKLDNN)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class FusedConv2d(nn.Module):
    """``relu?(bn?(conv(x)) + other?)``, then ``max_pool2d(·, 2)`` with `pool`, in one call; `conv` and `bn`
    are the model's own modules (live).

    With `gemm_forms`, a convolution of a shape `lsdb.landscape.conv_gemm` computes faster as one matrix
    product runs as that product (chosen once per input shape, from the shape alone). With `pool` (and
    no `other`) the module docstring's blocked path comes first, except for the dense matrix form, which
    is pooled before its bias and ReLU: a maximum commutes with adding a per-channel constant (rounding
    is monotone) and with a ReLU, so the result has the same bits. `x` may be a oneDNN blocked tensor."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, add: bool, relu: bool, onednn: bool,
                 gemm_forms: bool = True, pool: bool = False) -> None:
        super().__init__()
        self.conv, self.bn, self.add, self.relu, self.onednn = conv, bn, add, relu, onednn
        self.gemm_forms, self.pool = gemm_forms, pool
        self.blocked_out = False  # `fuse` sets it where only another FusedConv2d reads the output, as its x
        self._forms: dict[tuple[object, ...], Callable[[Tensor, Tensor, Tensor | None], Tensor] | None] = {}

    def _form(self, x: Tensor) -> Callable[[Tensor, Tensor, Tensor | None], Tensor] | None:
        key = (tuple(x.shape[1:]), x.device.type)
        if key not in self._forms:
            form = conv_gemm.conv_form(self.conv, x) if self.gemm_forms else None
            if form == "dense":
                self._forms[key] = conv_gemm.DenseConv(self.conv, *x.shape[1:])
            elif form == "taps":
                self._forms[key] = conv_gemm.TapsConv(self.conv)
            else:
                self._forms[key] = None
        return self._forms[key]

    def weight_and_bias(self) -> tuple[Tensor, Tensor | None]:
        """The convolution's weight and bias with BatchNorm's affine map (running statistics) folded in."""
        w, b, bn = self.conv.weight, self.conv.bias, self.bn
        if bn is None:
            return w, b
        assert bn.running_mean is not None and bn.running_var is not None
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale if b is None else (b - bn.running_mean) * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        return w * scale.view(-1, 1, 1, 1), shift

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        w, b = self.weight_and_bias()
        form = self._form(x)
        if self.pool and other is None:
            if not isinstance(form, conv_gemm.DenseConv) and self._blocked_applies(x):
                return self._blocked_pooled(x, w, b)
            x = _plain(x)
            if form is not None:
                out = max_pool_2x2(form(x, w, None))  # a new tensor: bias and ReLU in place
                if b is not None:
                    out = out.add_(b.view(1, -1, 1, 1))
                return out.relu_() if self.relu else out
        out = self._unpooled(_plain(x), other, w, b, form)
        return max_pool_2x2(out) if self.pool else out

    def _blocked_applies(self, x: Tensor) -> bool:
        return self.onednn and x.dim() == 4 and x.dtype == torch.float32 and x.device.type == "cpu" \
            and not torch.is_grad_enabled()

    def _blocked_pooled(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        """Convolution and max-pool in oneDNN's blocked layout (``Tensor.to_mkldnn``), pooled before the ReLU
        (they commute); a plain NCHW tensor unless `blocked_out`."""
        conv = self.conv
        padding = [int(p) for p in conv.padding]  # numeric: `_fusable_conv`
        blocked = torch.mkldnn_convolution(x if x.is_mkldnn else x.to_mkldnn(), w.contiguous().to_mkldnn(),
                                           None if b is None else b.contiguous().to_mkldnn(), padding,
                                           list(conv.stride), list(conv.dilation), conv.groups)
        out = torch.mkldnn_max_pool2d(blocked, [2, 2], [2, 2])
        if self.relu:
            out = torch.relu(out)
        return out if self.blocked_out else out.to_dense()

    def _unpooled(self, x: Tensor, other: Tensor | None, w: Tensor, b: Tensor | None,
                  form: Callable[[Tensor, Tensor, Tensor | None], Tensor] | None) -> Tensor:
        conv = self.conv
        if form is not None:
            out = form(x, w, b)
            if other is not None:
                out = out.add_(other)
            return out.relu_() if self.relu else out
        if self.onednn:
            geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)  # type: ignore[arg-type]
            unary = "relu" if self.relu else None
            if other is not None:
                return torch.ops.mkldnn._convolution_pointwise.binary(x, other, w, b, *geometry, "add", None,
                                                                      unary, [], None)
            return torch.ops.mkldnn._convolution_pointwise(x, w, b, *geometry, unary or "none", [], "")
        out = conv._conv_forward(x, w, b)
        if other is not None:
            out = out.add_(other)
        return out.relu_() if self.relu else out


def max_pool_2x2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 2)``, always a new tensor; on a channels-last input of even height and width, two
    maxima of NHWC views."""
    if x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2 or x.shape[2] == 0 or x.shape[3] == 0 \
            or not x.is_contiguous(memory_format=torch.channels_last):
        return F.max_pool2d(x, 2)
    n, c, h, w = x.shape
    windows = x.permute(0, 2, 3, 1).view(n, h // 2, 2, w // 2, 2, c)  # NHWC, rows and columns in pairs
    rows = torch.maximum(windows[:, :, 0], windows[:, :, 1])  # (n, h/2, w/2, 2, c), contiguous
    return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)  # channels-last NCHW


def _plain(x: Tensor) -> Tensor:
    """A oneDNN blocked tensor as a plain one; any other as it is."""
    return x.to_dense() if x.is_mkldnn else x


class MaxPool2x2(nn.Module):
    """``F.max_pool2d(x, 2)`` as `max_pool_2x2` computes it."""

    def forward(self, x: Tensor) -> Tensor:
        return max_pool_2x2(x)


class GlobalAvgPool(nn.Module):
    """``F.adaptive_avg_pool2d(x, 1)``; a 1 x 1 map is returned as it is (its own mean)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[2] == 1 and x.shape[3] == 1:
            return x
        return F.adaptive_avg_pool2d(x, 1)


def fuse(module: nn.Module, *, keep: Iterable[nn.Module] = (), onednn: bool | None = None) -> fx.GraphModule | None:
    """`module` with the rewrites of the module docstring, sharing its parameters and buffers; None when
    it cannot be traced or nothing applies. Modules in `keep` are left as they are (e.g. a layer whose
    output the evaluator serves from a cache)."""
    try:
        gm = fx.symbolic_trace(module)
    except Exception:  # not traceable: the evaluator runs the module as it is
        return None
    use_onednn = onednn_available() if onednn is None else onednn
    kept = {id(m) for m in keep}
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        mod = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, nn.Conv2d) and id(mod) not in kept and _fusable_conv(mod):
            changed |= _fuse_conv_chain(gm, node, mod, modules, use_onednn)
        elif mod is not None and id(mod) not in kept:
            changed |= _replace_pool(gm, node, mod)
    if not changed:
        return None
    _absorb_pools(gm)
    gm.graph.lint()
    gm.recompile()
    return gm


def _absorb_pools(gm: fx.GraphModule) -> None:
    """A `MaxPool2x2` whose input is a `FusedConv2d` without an add (and read by nothing else) joins it."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        fused = modules.get(node.target) if node.op == "call_module" else None  # type: ignore[arg-type]
        user = _only_user(node)
        if not isinstance(fused, FusedConv2d) or fused.add or fused.pool or user is None \
                or user.op != "call_module" or not isinstance(modules.get(user.target), MaxPool2x2):  # type: ignore[arg-type]
            continue
        fused.pool = True
        user.replace_all_uses_with(node)
        gm.graph.erase_node(user)
    gm.delete_all_unused_submodules()
    for node in gm.graph.nodes:  # a pooled output only a fused convolution reads, as its input: kept blocked
        fused, user = modules.get(node.target) if node.op == "call_module" else None, _only_user(node)  # type: ignore[arg-type]
        if isinstance(fused, FusedConv2d) and fused.pool and user is not None and user.op == "call_module" \
                and isinstance(modules.get(user.target), FusedConv2d) and user.args[0] is node \
                and node not in user.args[1:]:  # type: ignore[arg-type]
            fused.blocked_out = True


def _replace_pool(gm: fx.GraphModule, node: fx.Node, mod: nn.Module) -> bool:
    """Point `node` at `MaxPool2x2` or `GlobalAvgPool` where `mod` is the layer it computes exactly."""
    if isinstance(mod, nn.MaxPool2d) and _pair(mod.kernel_size) == (2, 2) and _pair(mod.stride) == (2, 2) \
            and _pair(mod.padding) == (0, 0) and _pair(mod.dilation) == (1, 1) and not mod.ceil_mode \
            and not mod.return_indices:
        replacement: nn.Module = MaxPool2x2()
    elif isinstance(mod, nn.AdaptiveAvgPool2d) and _pair(mod.output_size) == (1, 1):
        source = node.args[0] if node.args else None
        if not isinstance(source, fx.Node) or len(source.users) != 1:
            return False  # its input is returned as it is: only where nothing else reads (or mutates) it
        replacement = GlobalAvgPool()
    else:
        return False
    name = f"lsdb_pool_{node.name}"
    gm.add_submodule(name, replacement)
    node.target = name
    return True


def _pair(value: object) -> tuple[object, object]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # type: ignore[return-value]


def _fusable_conv(conv: nn.Conv2d) -> bool:
    return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), nn.ReLU)  # type: ignore[arg-type]
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS and len(node.args) == 1
    return node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1


def _is_eval_bn(node: fx.Node, modules: dict[str, nn.Module]) -> nn.BatchNorm2d | None:
    mod = modules.get(node.target) if node.op == "call_module" else None  # type: ignore[arg-type]
    if isinstance(mod, nn.BatchNorm2d) and mod.track_running_stats and mod.running_mean is not None:
        return mod
    return None


def _fuse_conv_chain(gm: fx.GraphModule, conv_node: fx.Node, conv: nn.Conv2d, modules: dict[str, nn.Module],
                     onednn: bool) -> bool:
    chain, cur = [conv_node], conv_node
    bn: nn.BatchNorm2d | None = None
    other: fx.Node | None = None
    relu = False
    nxt = _only_user(cur)
    if nxt is not None and (found := _is_eval_bn(nxt, modules)) is not None:
        bn, cur = found, nxt
        chain.append(cur)
        nxt = _only_user(cur)
    if (nxt is not None and nxt.op == "call_function" and nxt.target in _ADD_FUNCTIONS and len(nxt.args) == 2
            and not nxt.kwargs and sum(a is cur for a in nxt.args) == 1):
        candidate = nxt.args[1] if nxt.args[0] is cur else nxt.args[0]
        if isinstance(candidate, fx.Node):
            other, cur = candidate, nxt
            chain.append(cur)
            nxt = _only_user(cur)
    if nxt is not None and _is_relu(nxt, modules):
        relu, cur = True, nxt
        chain.append(cur)
    if len(chain) == 1:
        return False
    name = f"lsdb_fused_{conv_node.name}"
    gm.add_submodule(name, FusedConv2d(conv, bn, other is not None, relu, onednn))
    with gm.graph.inserting_before(cur):
        new = gm.graph.call_module(name, (conv_node.args[0],) if other is None else (conv_node.args[0], other))
    cur.replace_all_uses_with(new)
    for node in reversed(chain):
        gm.graph.erase_node(node)
    return True
