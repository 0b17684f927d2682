"""The `torch` checkpoint format: files written by `torch.save`, read without running their code.

Always `torch.load(..., weights_only=True)`: a pickle that asks for anything beyond tensors and
plain containers is refused before it can execute. Accepts a bare state dict or a training
checkpoint holding one under `state_dict`, `model_state_dict`, `model` or `net` (nested, as
Lightning and many training scripts do), and reads step, epoch and scalar metrics around it.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lsdb.checkpoints.formats import LoadedCheckpoint, as_float, normalize_state_dict, read_metadata
from lsdb.errors import BadInput

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
"""Keys under which a training checkpoint keeps the model's state dict, tried in this order."""
MAX_NESTING = 4
"""How many wrapper levels are unwrapped ({"model": {"state_dict": ...}} is two)."""

_CODE_PATTERNS = ("Unsupported global", "is blocked", "call reduce", "Can only create new object", "Can only build")


def _reason(message: str) -> str:
    """The one line of torch's long weights-only error that says what was wrong."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", message)
    if found:
        return f"it imports {found.group(1)}"
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|\Z)", message, re.S)
    text = found.group(1) if found else message
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "").split(". ")[0].rstrip(".")[:200]


def load_weights_only(path: Path) -> Any:
    """`torch.load` on the CPU with `weights_only=True`, its failures turned into one-line BadInput."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol chatter; the result is checked below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if any(pattern in message for pattern in _CODE_PATTERNS):
            raise BadInput(
                f"{path}: refused: the pickle wants to run code ({_reason(message)}); lsdb loads weights only "
                "(save model.state_dict() or a .safetensors file)"
            ) from None
        raise BadInput(f"{path}: not a readable torch checkpoint ({_reason(message)})") from None
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        reason = _reason(str(exc)) or type(exc).__name__
        if isinstance(exc, EOFError):
            reason = "the file is empty or ends early"
        raise BadInput(f"{path}: not a readable torch checkpoint ({reason})") from None


def unwrap(obj: Any, path: Path) -> tuple[Mapping[Any, Any], list[Mapping[str, Any]], list[str]]:
    """The state dict inside a loaded object, the wrappers around it (outermost first), and notes."""
    if isinstance(obj, Tensor):
        raise BadInput(f"{path}: no tensors found: the file holds one bare tensor, not a state dict of named tensors")
    if not isinstance(obj, Mapping):
        raise BadInput(f"{path}: no tensors found: expected a state dict (name -> tensor), got {type(obj).__name__}")
    wrappers: list[Mapping[str, Any]] = []
    route: list[str] = []
    ignored: list[str] = []
    state: Mapping[Any, Any] = obj
    for _ in range(MAX_NESTING):
        key = next((k for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if key is None:
            break
        wrappers.append(state)
        route.append(key)
        ignored += [str(k) for k, v in state.items() if k != key and as_float(v) is None]
        state = state[key]
    notes = []
    if route:
        notes.append("weights read from " + "".join(f"[{k!r}]" for k in route))
    if ignored:
        notes.append(f"ignored checkpoint entries: {', '.join(ignored[:8])}" + (" ..." if len(ignored) > 8 else ""))
    return state, wrappers, notes


class TorchFormat:
    """Pickled checkpoints from `torch.save` (state dicts or training checkpoints that hold one)."""

    name = "torch"
    suffixes: tuple[str, ...] = (".pt", ".pth", ".bin", ".ckpt", ".pth.tar", ".pt.tar")

    def read(self, path: Path) -> LoadedCheckpoint:
        """Load `path` with weights only and normalize the state dict inside it."""
        state, wrappers, notes = unwrap(load_weights_only(path), path)
        tensors, more_notes = normalize_state_dict(path, state)
        loose = {k: v for k, v in state.items() if isinstance(k, str) and not isinstance(v, Tensor | Mapping)}
        step, epoch, metrics = read_metadata([*wrappers, loose])
        return LoadedCheckpoint(tensors=tensors, step=step, epoch=epoch, metrics=metrics, notes=notes + more_notes)
