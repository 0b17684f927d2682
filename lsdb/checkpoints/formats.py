"""The checkpoint-format contract: read a user's file into named tensors plus step, epoch and metrics.

A format is anything with a `name`, the file `suffixes` it claims and `read(path)`. The built-in
formats (torch pickles, loaded with `weights_only=True`, and safetensors) are registered through
`register_builtin_formats`, the same callback a plugin's `register_checkpoint_formats` hook gets.
Every reader ends in `normalize_state_dict`, so all formats agree on names and notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from lsdb.checkpoints.digests import dtype_code
from lsdb.errors import BadInput, NotFound

STEP_KEYS = ("step", "global_step", "iteration", "iter")
"""Keys read as the training step, first present wins."""
EPOCH_KEYS = ("epoch",)
"""Keys read as the epoch."""
STRIPPED_PREFIXES = ("module.", "_orig_mod.")
"""Prefixes removed when every name carries them (DataParallel/DDP/AveragedModel, torch.compile)."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What a format read from a file: contiguous CPU tensors by normalized name, plus what it learned."""

    tensors: dict[str, Tensor]
    step: int | None = None
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class CheckpointFormat(Protocol):
    """A checkpoint file format: `read` raises BadInput (naming the file) for anything it cannot use."""

    name: str
    suffixes: tuple[str, ...]

    def read(self, path: Path) -> LoadedCheckpoint:
        """Read `path` into a LoadedCheckpoint; never execute code from the file."""
        ...


def register_builtin_formats(register: Callable[[CheckpointFormat], None]) -> None:
    """Register lsdb's own formats: `torch` (.pt .pth .bin .ckpt .pth.tar) and `safetensors`."""
    from lsdb.checkpoints.safetensors_files import SafetensorsFormat
    from lsdb.checkpoints.torch_files import TorchFormat

    register(TorchFormat())
    register(SafetensorsFormat())


def builtin_formats() -> list[CheckpointFormat]:
    """The built-in formats as a list (what `read_checkpoint` uses when given none)."""
    formats: list[CheckpointFormat] = []
    register_builtin_formats(formats.append)
    return formats


def known_suffixes(formats: Iterable[CheckpointFormat] | None = None) -> list[str]:
    """Every file suffix the formats claim, sorted (the built-in formats by default)."""
    return sorted({s.lower() for fmt in (builtin_formats() if formats is None else formats) for s in fmt.suffixes})


def format_for(path: Path, formats: Iterable[CheckpointFormat]) -> CheckpointFormat:
    """The format whose suffix ends the file name (longest match wins, case-insensitive)."""
    name = Path(path).name.lower()
    candidates = list(formats)
    best: tuple[int, CheckpointFormat] | None = None
    for fmt in candidates:
        for suffix in fmt.suffixes:
            if name.endswith(suffix.lower()) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), fmt)
    if best is None:
        known = " ".join(known_suffixes(candidates))
        raise BadInput(f"{path}: unknown checkpoint format (known suffixes: {known})")
    return best[1]


def read_checkpoint(path: Path | str, formats: Iterable[CheckpointFormat] | None = None) -> LoadedCheckpoint:
    """Read a checkpoint file with the format its suffix names (the built-in formats by default)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise BadInput(f"{path}: not a file")
    return format_for(path, builtin_formats() if formats is None else formats).read(path)


def _names(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def as_int(value: Any) -> int | None:
    """An integral number from an int, an integral float or a 0-dim tensor; None otherwise."""
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            return None
        value = value.item()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A real number from an int, a float or a 1-element tensor; None otherwise (bools included)."""
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_metadata(sources: Iterable[Mapping[str, Any]]) -> tuple[int | None, int | None, dict[str, float]]:
    """Step, epoch and scalar metrics from the mappings that surround a state dict (outermost first).

    Step comes from the first of STEP_KEYS present, epoch from `epoch`; every other scalar number
    becomes a metric, as do the numbers in a nested `metrics` mapping.
    """
    step = epoch = None
    metrics: dict[str, float] = {}
    for source in sources:
        for key in STEP_KEYS:
            if step is None and key in source:
                step = as_int(source[key])
        for key in EPOCH_KEYS:
            if epoch is None and key in source:
                epoch = as_int(source[key])
        nested = source.get("metrics")
        scalars = [*source.items(), *(nested.items() if isinstance(nested, Mapping) else [])]
        for key, value in scalars:
            if isinstance(key, str) and key not in STEP_KEYS + EPOCH_KEYS and key not in metrics:
                number = as_float(value)
                if number is not None:
                    metrics[key] = number
    return step, epoch, metrics


def normalize_state_dict(path: Path, raw: Mapping[Any, Any]) -> tuple[dict[str, Tensor], list[str]]:
    """Named contiguous CPU tensors from a state dict, with notes on what was dropped or renamed.

    Non-tensor entries are skipped; integer and bool tensors are kept (they are buffers such as
    `num_batches_tracked`); an AveragedModel's `n_averaged` counter is dropped; a prefix every
    name shares (`module.`, `_orig_mod.`) is stripped. No tensors at all is BadInput.
    """
    notes: list[str] = []
    tensors: dict[str, Tensor] = {}
    skipped: list[str] = []
    for key, value in raw.items():
        if isinstance(key, str) and isinstance(value, Tensor):
            tensors[key] = value
        else:
            skipped.append(str(key))
    if skipped:
        notes.append(f"skipped non-tensor entries: {_names(skipped)}")
    if not tensors:
        keys = _names(str(k) for k in raw)
        raise BadInput(f"{path}: no tensors found (expected a state dict of named tensors; keys: {keys or 'none'})")
    if (
        "n_averaged" in tensors
        and len(tensors) > 1
        and all(k.startswith("module.") for k in tensors if k != "n_averaged")
    ):
        del tensors["n_averaged"]
        notes.append("dropped n_averaged (the torch.optim.swa_utils.AveragedModel counter)")
    stripped = True
    while stripped:
        stripped = False
        for prefix in STRIPPED_PREFIXES:
            if all(k.startswith(prefix) and len(k) > len(prefix) for k in tensors):
                tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
                notes.append(f"stripped the {prefix!r} prefix from every name")
                stripped = True
    out: dict[str, Tensor] = {}
    seen: dict[tuple[Any, ...], str] = {}
    tied: list[str] = []
    for name, value in tensors.items():
        if value.numel():
            where: tuple[Any, ...] = (value.untyped_storage().data_ptr(), value.storage_offset(),
                                      tuple(value.shape), tuple(value.stride()), value.dtype)
            if where in seen:  # tied weights (one tensor under two names, e.g. lm_head and the embedding)
                tied.append(f"{name} (= {seen[where]})")
                continue
            seen[where] = name
        try:
            dtype_code(value.dtype, name)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None
        if value.layout != torch.strided or value.is_quantized:
            raise BadInput(f"{path}: tensor {name!r} is sparse or quantized; lsdb reads dense tensors only")
        out[name] = value.detach().to("cpu").contiguous()
    if tied:
        notes.append(f"tied weights stored once: {_names(tied)}")
    buffers = sorted(name for name, t in out.items() if not t.is_floating_point())
    if buffers:
        notes.append(f"non-float tensors kept as buffers: {_names(buffers)}")
    return out, notes
