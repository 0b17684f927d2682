"""Permutation symmetries of a network, derived from its graph, and applying them to a state dict.

Permuting the hidden units of a layer (rows of its weight and bias, the matching columns of the
next layer's weight) leaves the function unchanged (Hecht-Nielsen 1990; Entezari et al. 2022,
"The Role of Permutation Invariance in Linear Mode Connectivity of Neural Networks", ICLR;
Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin: Merging Models modulo Permutation
Symmetries", ICLR, §2). Which weight axes must share one permutation is a property of the
graph, not of the architecture's name: Ainsworth et al. write these "permutation specs" by
hand per model (their Appendix, ``weight_matching.py``). Here they are derived by tracing the
model with ``torch.fx`` and following each tensor's channel axis:

* a ``Linear``/``Conv`` output starts a new group: its weight's axis 0 and its bias join it, and
  its weight's axis 1 joins the group of its input;
* BatchNorm/LayerNorm parameters and running statistics follow the channels they normalize;
* element-wise activations, dropout and (adaptive) pooling keep the group;
* an addition ties the groups of its operands (a residual stream shares one permutation
  across all blocks, Ainsworth et al. Appendix A.2); the network's input and output are fixed;
* ``flatten`` of a ``C×H×W`` map keeps the group with blocks of ``H·W`` consecutive features.

Anything else (concatenation, attention, grouped convolutions, a module this module does not
know) is refused with a `ValueError` naming the first unsupported module or operation, as is a
model ``torch.fx`` cannot trace (data-dependent control flow).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.fx.passes.shape_prop import ShapeProp

#: Modules that act on each channel separately and keep the channel axis (axis 1).
CHANNELWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SiLU, nn.Softplus, nn.Hardtanh,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
#: Modules that are non-linearities (their outputs are what activation matching correlates).
NONLINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SiLU, nn.Softplus, nn.Hardtanh,
)
NONLINEAR_FUNCTIONS: tuple[Any, ...] = (
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.gelu, torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.elu,
    F.silu, F.softplus, F.hardtanh,
)
CHANNELWISE_FUNCTIONS: tuple[Any, ...] = (
    *NONLINEAR_FUNCTIONS, F.dropout, F.dropout1d, F.dropout2d, F.max_pool1d, F.max_pool2d, F.avg_pool1d,
    F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
)
NONLINEAR_METHODS = ("relu", "sigmoid", "tanh")
CHANNELWISE_METHODS = (*NONLINEAR_METHODS, "contiguous", "clone", "float", "double", "to")
ADD_FUNCTIONS: tuple[Any, ...] = (operator.add, operator.iadd, torch.add, operator.sub, torch.sub)
FLATTEN_FUNCTIONS: tuple[Any, ...] = (torch.flatten,)
NORM_MODULES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")

_FIXED = 0  # the union-find element of "no permutation" (network inputs and outputs)


@dataclass(frozen=True)
class AxisRef:
    """One axis of one state-dict tensor that a group permutes, in blocks of `block` consecutive entries."""

    name: str
    axis: int
    block: int = 1


@dataclass(frozen=True)
class PermutationGroup:
    """Hidden units that must be permuted together, and every tensor axis that follows them.

    `producers` are the Linear/Conv modules whose outputs carry the group (several for a
    residual stream); `probes` the traced nodes whose values carry it one unit per channel,
    the non-linearities' outputs when there are any (what activation matching correlates,
    Ainsworth et al. §3.1); `pre_probes` the producers' outputs (pre-activations, used to break
    ties between units a ReLU leaves constant on the data).
    """

    name: str
    size: int
    axes: tuple[AxisRef, ...]
    producers: tuple[str, ...]
    probes: tuple[str, ...]
    pre_probes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PermutationSpec:
    """The permutation groups of a traced model (`graph` is the ``torch.fx`` graph they were read from)."""

    groups: tuple[PermutationGroup, ...]
    graph: fx.Graph = field(compare=False, repr=False)

    def group(self, name: str) -> PermutationGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def axes_of(self) -> dict[str, list[tuple[str, AxisRef]]]:
        """For each state-dict name, the (group name, axis) pairs that permute it."""
        out: dict[str, list[tuple[str, AxisRef]]] = {}
        for g in self.groups:
            for ref in g.axes:
                out.setdefault(ref.name, []).append((g.name, ref))
        return out

    def identity(self) -> dict[str, Tensor]:
        """The identity permutation of every group."""
        return {g.name: torch.arange(g.size) for g in self.groups}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = [_FIXED]

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        keep, drop = (ra, rb) if ra < rb else (rb, ra)  # the fixed element (0) always stays the root
        self.parent[drop] = keep
        return keep


class _PathTracer(fx.Tracer):
    """A tracer that remembers which module it is inside, to name the culprit when tracing fails."""

    def __init__(self) -> None:
        super().__init__()
        self.path: list[str] = []
        self.failed_at: str | None = None

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.path.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            self.failed_at = self.failed_at if self.failed_at is not None else self.path[-1]
            raise
        finally:
            self.path.pop()


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` symbolic trace of `model`; a `ValueError` names the module that could not be traced."""
    tracer = _PathTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, ... for data-dependent Python
        where = tracer.failed_at
        module = model.get_submodule(where) if where else model
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"cannot trace the model's graph: unsupported module '{where or '(top level)'}' "
                         f"({type(module).__name__}): {first}") from None
    return fx.GraphModule(model, graph)


@dataclass
class _Value:
    """What the walk knows about one traced tensor: its channel group (union-find id) and block size."""

    group: int
    block: int
    ndim: int


class _Walker:
    """Walks a traced graph once, collecting which state-dict axes share which permutation."""

    def __init__(self, gm: fx.GraphModule, state_names: set[str]) -> None:
        self.gm, self.names = gm, state_names
        self.uf = _UnionFind()
        self.values: dict[str, _Value] = {}
        self.axes: list[tuple[int, AxisRef]] = []
        self.producers: list[tuple[int, str, int]] = []  # (group, module, out size)
        self.probes: list[tuple[int, str, bool]] = []  # (group, node, is non-linearity output)
        self.pre_probes: list[tuple[int, str]] = []  # (group, producer's output node)

    def walk(self) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.values[node.name] = _Value(_FIXED, 1, _ndim(node))
            elif node.op == "call_module":
                self._module(node)
            elif node.op in ("call_function", "call_method"):
                self._function(node)
            elif node.op == "output":
                for arg in _flat_nodes(node.args):
                    if arg.name in self.values:
                        self.uf.union(self.values[arg.name].group, _FIXED)
            else:
                raise ValueError(f"cannot derive permutations: unsupported graph node '{node.name}' ({node.op} "
                                 f"{node.target}); only modules and functions are supported")

    def _input(self, node: fx.Node, i: int = 0) -> _Value:
        arg = node.args[i] if i < len(node.args) else None
        if not isinstance(arg, fx.Node) or arg.name not in self.values:
            raise ValueError(f"cannot derive permutations: '{node.name}' takes a value that is not a traced tensor")
        return self.values[arg.name]

    def _axis(self, group: int, name: str, axis: int, block: int = 1) -> None:
        if name in self.names:
            self.axes.append((group, AxisRef(name, axis, block)))

    def _keep(self, node: fx.Node, value: _Value, nonlinear: bool) -> None:
        out = _Value(value.group, value.block, _ndim(node))
        self.values[node.name] = out
        if out.block == 1 and out.ndim >= 2:
            self.probes.append((out.group, node.name, nonlinear))

    def _module(self, node: fx.Node) -> None:
        target = str(node.target)
        module = self.gm.get_submodule(target)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            self._linear(node, target, module)
        elif isinstance(module, NORM_MODULES):
            value = self._input(node)
            if isinstance(module, nn.LayerNorm) and (len(module.normalized_shape) != 1 or value.ndim != 2):
                raise _unsupported(target, module, "LayerNorm over more than the feature axis of a 2-d input")
            for t in NORM_TENSORS:
                self._axis(value.group, f"{target}.{t}", 0, value.block)
            self._keep(node, value, nonlinear=False)
        elif isinstance(module, nn.Flatten):
            value = self._input(node)
            if module.start_dim != 1 or module.end_dim != -1:
                raise _unsupported(target, module, "flatten must start at axis 1 and end at the last")
            self._flatten(node, value)
        elif isinstance(module, CHANNELWISE_MODULES):
            self._keep(node, self._input(node), nonlinear=isinstance(module, NONLINEAR_MODULES))
        else:
            raise _unsupported(target, module, "no permutation rule for this module")

    def _linear(self, node: fx.Node, target: str, module: nn.Module) -> None:
        value = self._input(node)
        if isinstance(module, nn.Linear):
            if value.ndim != 2:
                raise _unsupported(target, module, f"Linear on a {value.ndim}-d input (only (N, features))")
            out = module.out_features
        else:
            assert isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
            if module.groups != 1:
                raise _unsupported(target, module, f"grouped convolution (groups={module.groups})")
            if value.block != 1:
                raise _unsupported(target, module, "convolution of a flattened input")
            out = module.out_channels
        self._axis(value.group, f"{target}.weight", 1, value.block)
        group = self.uf.new()
        self._axis(group, f"{target}.weight", 0)
        self._axis(group, f"{target}.bias", 0)
        self.producers.append((group, target, out))
        self.values[node.name] = _Value(group, 1, _ndim(node))
        self.probes.append((group, node.name, False))
        self.pre_probes.append((group, node.name))

    def _flatten(self, node: fx.Node, value: _Value) -> None:
        shape = _shape(node.args[0]) if isinstance(node.args[0], fx.Node) else None
        if shape is None:
            raise ValueError(f"cannot derive permutations: no shape recorded for the input of '{node.name}'")
        block = value.block * math.prod(shape[2:])
        self.values[node.name] = _Value(value.group, block, _ndim(node))
        if block == 1:
            self.probes.append((value.group, node.name, False))

    def _function(self, node: fx.Node) -> None:
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        tensor_args = [a for a in node.args if isinstance(a, fx.Node) and a.name in self.values]
        if node.op == "call_method" and target in ("size", "dim") or target is getattr:
            return  # a shape, not a tensor
        if target in ADD_FUNCTIONS or (node.op == "call_method" and target in ("add", "add_", "sub", "sub_")):
            if not tensor_args:
                raise ValueError(f"cannot derive permutations: '{node.name}' ({name}) has no tensor operand")
            values = [self.values[a.name] for a in tensor_args]
            if len({v.block for v in values}) != 1:
                raise ValueError(f"cannot derive permutations: '{node.name}' adds tensors of different layouts")
            group = values[0].group
            for v in values[1:]:
                group = self.uf.union(group, v.group)
            self._keep(node, _Value(group, values[0].block, 0), nonlinear=False)
        elif target in (operator.mul, operator.truediv, torch.mul) and len(tensor_args) == 1 and all(
                isinstance(a, (int, float)) for a in node.args if not isinstance(a, fx.Node)):
            self._keep(node, self.values[tensor_args[0].name], nonlinear=False)
        elif (node.op == "call_function" and target in CHANNELWISE_FUNCTIONS) or (
                node.op == "call_method" and target in CHANNELWISE_METHODS):
            nonlinear = target in NONLINEAR_FUNCTIONS or target in NONLINEAR_METHODS
            self._keep(node, self._input(node), nonlinear=nonlinear)
        elif target in FLATTEN_FUNCTIONS or (node.op == "call_method" and target in ("flatten", "view", "reshape")):
            self._flatten_call(node, name)
        else:
            raise ValueError(f"cannot derive permutations: unsupported operation '{name}' at '{node.name}'")

    def _flatten_call(self, node: fx.Node, name: str) -> None:
        value = self._input(node)
        in_shape = _shape(node.args[0]) if isinstance(node.args[0], fx.Node) else None
        out_shape = _shape(node)
        ok = (in_shape is not None and out_shape is not None and len(out_shape) == 2
              and out_shape[0] == in_shape[0] and len(in_shape) >= 2)
        if name == "flatten" or node.target is torch.flatten:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            ok = ok and bool(start == 1)
        if not ok:
            raise ValueError(f"cannot derive permutations: unsupported reshape '{name}' at '{node.name}' "
                             "(only (N, C, ...) -> (N, C·...) is supported)")
        self._flatten(node, value)

    def spec(self) -> PermutationSpec:
        roots: dict[int, list[AxisRef]] = {}
        for group, ref in self.axes:
            root = self.uf.find(group)
            if root != _FIXED and ref not in roots.setdefault(root, []):
                roots[root].append(ref)
        sizes: dict[int, int] = {}
        names: dict[int, list[str]] = {}
        for group, module, size in self.producers:
            root = self.uf.find(group)
            if root == _FIXED:
                continue
            if sizes.setdefault(root, size) != size:
                raise ValueError(f"cannot derive permutations: '{module}' joins a group of {sizes[root]} units "
                                 f"with {size}")
            names.setdefault(root, []).append(module)
        probes: dict[int, tuple[list[str], list[str]]] = {}
        for group, node, nonlinear in self.probes:
            root = self.uf.find(group)
            probes.setdefault(root, ([], []))[0 if nonlinear else 1].append(node)
        pre: dict[int, list[str]] = {}
        for group, node in self.pre_probes:
            pre.setdefault(self.uf.find(group), []).append(node)
        groups = []
        for root, modules in names.items():
            preferred, other = probes.get(root, ([], []))
            groups.append(PermutationGroup(name=modules[0], size=sizes[root], axes=tuple(roots.get(root, [])),
                                           producers=tuple(modules), probes=tuple(preferred or other),
                                           pre_probes=tuple(pre.get(root, []))))
        return PermutationSpec(groups=tuple(groups), graph=self.gm.graph)


def _unsupported(target: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(f"cannot derive permutations: unsupported module '{target}' ({type(module).__name__}): {why}")


def _flat_nodes(args: Any) -> list[fx.Node]:
    if isinstance(args, fx.Node):
        return [args]
    if isinstance(args, (tuple, list)):
        return [n for a in args for n in _flat_nodes(a)]
    if isinstance(args, dict):
        return [n for a in args.values() for n in _flat_nodes(a)]
    return []


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def _ndim(node: fx.Node) -> int:
    shape = _shape(node)
    return len(shape) if shape is not None else 0


def permutation_spec(model: nn.Module, example_input: Tensor) -> PermutationSpec:
    """Trace `model` and derive its permutation groups (shapes from one forward pass of `example_input`).

    The forward pass runs in eval mode without gradients (BatchNorm statistics are untouched)
    and the model's train/eval modes are restored. `ValueError` names the first module or
    operation the rules do not cover, or the module that could not be traced.
    """
    gm = trace(model)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input)
    finally:
        for m, training in modes.items():
            m.train(training)
    walker = _Walker(gm, set(model.state_dict()))
    walker.walk()
    spec = walker.spec()
    check_spec(spec, model.state_dict())
    return spec


def check_spec(spec: PermutationSpec, state: Mapping[str, Tensor]) -> None:
    """Every axis a group permutes must have ``size · block`` entries, and no axis may be in two groups."""
    seen: dict[tuple[str, int], str] = {}
    for g in spec.groups:
        for ref in g.axes:
            t = state[ref.name]
            if t.shape[ref.axis] != g.size * ref.block:
                raise ValueError(f"group '{g.name}' ({g.size} units) does not fit axis {ref.axis} of '{ref.name}' "
                                 f"{tuple(t.shape)}")
            other = seen.setdefault((ref.name, ref.axis), g.name)
            if other != g.name:
                raise ValueError(f"axis {ref.axis} of '{ref.name}' is in two groups: '{other}' and '{g.name}'")


def expand(perm: Tensor, block: int) -> Tensor:
    """The index of a permutation of channels acting on `block` consecutive features per channel."""
    if block == 1:
        return perm
    return (perm.unsqueeze(1) * block + torch.arange(block)).reshape(-1)


def permute_tensor(t: Tensor, refs: Sequence[tuple[AxisRef, Tensor]]) -> Tensor:
    """`t` with each given axis re-indexed: ``out.select(axis, i) = t.select(axis, perm[i])``."""
    for ref, perm in refs:
        t = t.index_select(ref.axis, expand(perm, ref.block).to(t.device))
    return t


def apply_permutation(spec: PermutationSpec, perms: Mapping[str, Tensor], state: Mapping[str, Tensor]
                      ) -> dict[str, Tensor]:
    """The state dict of the permuted network: unit i of each group becomes the old unit ``perm[i]``.

    Function-preserving (Ainsworth et al. 2023, §2: W'_ℓ = P_ℓ W_ℓ P_{ℓ-1}ᵀ); tensors no group
    touches are returned as they are.
    """
    out = dict(state)
    for name, entries in spec.axes_of().items():
        out[name] = permute_tensor(state[name], [(ref, perms[g]) for g, ref in entries])
    return out


def invert(perm: Tensor) -> Tensor:
    """The inverse permutation."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm), device=perm.device)
    return inv


def random_permutation(spec: PermutationSpec, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """A uniformly random permutation of every group."""
    return {g.name: torch.randperm(g.size, generator=generator) for g in spec.groups}
