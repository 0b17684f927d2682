"""A model's parameters as one flat vector, with a stable, documented layout.

Every landscape method works in parameter space: a point is a vector θ ∈ R^P, a direction is
a vector d ∈ R^P, and the model is evaluated at θ0 + Σ_j c_j d_j. `ParamLayout` fixes how a
module's tensors map onto that vector:

* parameters first, in ``named_parameters()`` order (tied parameters once), then, when asked
  for, the floating-point buffers that belong to the state dict (BatchNorm running means and
  variances), in ``named_buffers()`` order. Integer buffers (``num_batches_tracked``) are
  never part of the vector;
* each tensor occupies ``vector[offset : offset + numel]``, flattened in row-major order;
* a tensor with ``dim >= 2`` that is a parameter is a **filter** tensor (conv kernels, linear
  weights): its filters are the slices along dim 0 (a conv output channel, a linear row).
  Everything else (biases, BatchNorm weights and biases, buffers) is a **vector** tensor.

Transformers (Hugging Face ``Conv1D``, GPT-2's linear layers, stores its weight as (in, out)):
its filters are the slices along dim 1, the rows of the linear map (`ParamEntry.filter_dim`),
so filter normalization is always per output unit of a linear layer, per token vector of an
embedding (its rows), and LayerNorm weights and biases (1-D) are vector tensors like BatchNorm's.

`select_entries` / `selection_mask` pick parameters by name globs (``transformer.h.*.attn.*``,
``!*.ln_*`` to exclude) for per-layer analyses.

This is the layout of Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", §4),
whose filter normalization needs to know which entries form a filter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor, nn

StateSource = Union[nn.Module, Mapping[str, Tensor]]


@dataclass(frozen=True)
class ParamEntry:
    """One tensor of the layout: where it lives in the flat vector and what kind it is."""

    name: str
    shape: tuple[int, ...]
    offset: int
    is_buffer: bool = False
    #: the dimension whose slices are the filters (output units): 0, or 1 for a (in, out) ``Conv1D`` weight
    filter_dim: int = 0

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.numel

    @property
    def is_filter(self) -> bool:
        """A parameter with ``dim >= 2``, whose filters are its slices along dim 0 (Li et al. 2018, §4)."""
        return len(self.shape) >= 2 and not self.is_buffer


@dataclass(frozen=True)
class ParamLayout:
    """The map between a module's named tensors and one flat vector (see the module docstring)."""

    entries: tuple[ParamEntry, ...]

    @classmethod
    def from_module(cls, module: nn.Module, buffers: bool = False) -> ParamLayout:
        """Parameters in ``named_parameters()`` order, then (with `buffers`) floating state-dict buffers."""
        named: list[tuple[str, Tensor, bool]] = [(n, p, False) for n, p in module.named_parameters()]
        if buffers:
            keys = set(module.state_dict(keep_vars=True))
            named += [(n, b, True) for n, b in module.named_buffers() if n in keys and b.is_floating_point()]
        transposed = {f"{name}.weight" for name, m in module.named_modules()
                      if type(m).__name__ == "Conv1D" and hasattr(m, "nf")}  # transformers' (in, out) linear
        layout = cls._build((n, tuple(t.shape), is_buffer) for n, t, is_buffer in named)
        if not transposed:
            return layout
        return cls(tuple(ParamEntry(e.name, e.shape, e.offset, e.is_buffer, 1 if e.name in transposed else 0)
                         for e in layout.entries))

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, Tensor], names: Iterable[str] | None = None, buffers: Iterable[str] = ()
    ) -> ParamLayout:
        """Floating-point entries of `state_dict` in its order (or in `names` order), buffers last.

        A state dict does not say which entries are buffers: name them in `buffers` (they are
        moved after the parameters, and directions never move them). For a module's own state
        dict this gives the same layout as ``from_module(module, buffers=True)``.
        """
        buffer_set = set(buffers)
        keys = list(names) if names is not None else [k for k, v in state_dict.items() if v.is_floating_point()]
        keys = [k for k in keys if k not in buffer_set] + [k for k in keys if k in buffer_set]
        return cls._build((k, tuple(state_dict[k].shape), k in buffer_set) for k in keys)

    @classmethod
    def _build(cls, items: Iterable[tuple[str, tuple[int, ...], bool]]) -> ParamLayout:
        entries, offset = [], 0
        for name, shape, is_buffer in items:
            entry = ParamEntry(name, shape, offset, is_buffer)
            entries.append(entry)
            offset = entry.stop
        return cls(tuple(entries))

    @property
    def numel(self) -> int:
        """P, the length of the flat vector."""
        return self.entries[-1].stop if self.entries else 0

    @property
    def n_params(self) -> int:
        """Length of the parameter part (the buffers, if any, follow it)."""
        return sum(e.numel for e in self.entries if not e.is_buffer)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def entry(self, name: str) -> ParamEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"{name!r} is not in the layout")

    def parameters_only(self) -> ParamLayout:
        """The same layout without its buffers (offsets unchanged: buffers come last)."""
        return ParamLayout(tuple(e for e in self.entries if not e.is_buffer))

    def flatten(self, source: StateSource, dtype: torch.dtype | None = None,
                device: torch.device | str | None = None) -> Tensor:
        """Concatenate `source`'s tensors (a module or a state dict) into one vector, detached."""
        tensors = _named_tensors(source)
        missing = [e.name for e in self.entries if e.name not in tensors]
        if missing:
            raise KeyError(f"missing from the source: {', '.join(missing[:5])}")
        parts = [tensors[e.name].detach() for e in self.entries]
        for e, t in zip(self.entries, parts, strict=True):
            if tuple(t.shape) != e.shape:
                raise ValueError(f"{e.name}: shape {tuple(t.shape)} does not match the layout's {e.shape}")
        dtype = dtype or (parts[0].dtype if parts else torch.float32)
        device = device if device is not None else (parts[0].device if parts else "cpu")
        if not parts:
            return torch.zeros(0, dtype=dtype, device=device)
        # written into one vector tensor by tensor: converting every tensor first and then concatenating
        # would hold two copies of the parameters at once (one when the dtype and device already match)
        out = torch.empty(sum(t.numel() for t in parts), dtype=dtype, device=device)
        start = 0
        for t in parts:
            out[start:start + t.numel()].copy_(t.reshape(-1))
            start += t.numel()
        return out

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Name -> view of `vector` (shape ``(..., P)``: leading dims are kept, e.g. a batch of points).

        A vector shorter than P (only the parameter part) yields only the entries it covers.
        """
        if vector.shape[-1] not in (self.numel, self.n_params):
            raise ValueError(f"vector has {vector.shape[-1]} entries; the layout has {self.numel}")
        lead = tuple(vector.shape[:-1])
        return {
            e.name: vector[..., e.offset:e.stop].view(*lead, *e.shape)
            for e in self.entries if e.stop <= vector.shape[-1]
        }


def _named_tensors(source: StateSource) -> dict[str, Tensor]:
    if isinstance(source, nn.Module):
        named: dict[str, Tensor] = dict(source.named_parameters())
        named.update(source.named_buffers())
        return named
    return dict(source)


def tied_names(model: nn.Module) -> dict[str, str]:
    """Each alias of a tied parameter (``lm_head.weight``) -> the name it is stored under
    (``transformer.wte.weight``, the first in ``named_parameters()``); empty without tying."""
    canonical: dict[int, str] = {}
    out: dict[str, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        first = canonical.setdefault(id(p), name)
        if first != name:
            out[name] = first
    return out


def _patterns(pattern: str) -> tuple[list[str], list[str]]:
    parts = [p for p in pattern.replace(";", " ").replace(",", " ").split() if p]
    return [p for p in parts if not p.startswith("!")], [p[1:] for p in parts if p.startswith("!")]


def select_entries(layout: ParamLayout, pattern: str) -> list[ParamEntry]:
    """The parameters (never buffers) whose names match `pattern`: globs separated by spaces, commas or
    ``;``; a glob starting with ``!`` excludes (``"transformer.h.*.attn.* !*.bias"``; only exclusions:
    everything else). A pattern that selects nothing is a ValueError naming the closest names."""
    import fnmatch

    include, exclude = _patterns(pattern)
    if not include and not exclude:
        raise ValueError("params: an empty selection pattern")
    params = [e for e in layout.entries if not e.is_buffer]
    chosen = [e for e in params
              if (not include or any(fnmatch.fnmatchcase(e.name, g) for g in include))
              and not any(fnmatch.fnmatchcase(e.name, g) for g in exclude)]
    if not chosen:
        probe = (include or exclude)[0]
        close = _closest(probe, [e.name for e in params])
        raise ValueError(f"params={pattern!r} selects no parameter; closest names: {', '.join(close)}")
    return chosen


def _closest(glob: str, names: list[str], n: int = 5) -> list[str]:
    """The names most like `glob`, segment by segment (a segment the glob matches counts 1, others their
    string similarity), with layer numbers folded into ``*`` so that one family is shown once."""
    import difflib
    import fnmatch
    import re

    wanted = glob.split(".")

    def aligned(parts: list[str], globs: list[str]) -> float:
        return sum(1.0 if fnmatch.fnmatchcase(a, b) else difflib.SequenceMatcher(None, a, b).ratio()
                   for a, b in zip(parts, globs, strict=False))

    def score(name: str) -> float:  # segments aligned from the front or from the back (a missing prefix)
        parts = name.split(".")
        best = max(aligned(parts, wanted), aligned(parts[::-1], wanted[::-1]))
        return best - 0.1 * abs(len(parts) - len(wanted))

    families: dict[str, float] = {}
    for name in names:
        family = re.sub(r"\.\d+\.", ".*.", name)
        families[family] = max(families.get(family, -1e9), score(name))
    return sorted(families, key=lambda f: -families[f])[:n]


def selection_mask(layout: ParamLayout, pattern: str, width: int | None = None) -> Tensor:
    """A bool vector over the layout (or its first `width` entries): True on the selected parameters."""
    mask = torch.zeros(layout.numel if width is None else width, dtype=torch.bool)
    for e in select_entries(layout, pattern):
        mask[e.offset:e.stop] = True
    return mask
