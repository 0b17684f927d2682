"""The `safetensors` checkpoint format: a JSON header and raw tensor bytes, no code at all.

String metadata (`__metadata__`) may carry `step`/`epoch` and numeric metrics; they are parsed
when present. Names are normalized like every other format (`module.` prefixes, buffers).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from lsdb.checkpoints.formats import LoadedCheckpoint, normalize_state_dict, read_metadata
from lsdb.errors import BadInput


def _number(text: str) -> int | float | None:
    """An int or float parsed from a metadata string; None when it is not one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


class SafetensorsFormat:
    """`.safetensors` files, as written by `safetensors.torch.save_file` or Hugging Face."""

    name = "safetensors"
    suffixes: tuple[str, ...] = (".safetensors",)

    def read(self, path: Path) -> LoadedCheckpoint:
        """Read every tensor of `path` and the numbers in its metadata."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = handle.metadata() or {}
                raw: dict[str, Tensor] = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except Exception as exc:  # SafetensorError, OSError, ...: the file is not usable
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"{path}: not a readable safetensors file ({reason})") from None
        numbers = {key: value for key, value in ((k, _number(v)) for k, v in metadata.items()) if value is not None}
        step, epoch, metrics = read_metadata([numbers])
        tensors, notes = normalize_state_dict(path, raw)
        return LoadedCheckpoint(tensors=tensors, step=step, epoch=epoch, metrics=metrics, notes=notes)
