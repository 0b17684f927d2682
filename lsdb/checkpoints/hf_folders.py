"""Hugging Face layouts, read as they come out of transformers, the Trainer and PEFT.

* A **model folder** (``config.json`` beside ``model.safetensors``, a sharded
  ``model.safetensors.index.json``, or ``pytorch_model.bin`` / its index, read with
  ``weights_only``) is one checkpoint. Safetensors folders are *streamed*: the canonical header is
  built from the shards' headers alone, then each tensor's bytes are copied from its shard into
  the store one at a time, so memory stays at one read buffer, whatever the model's size.
* A **Trainer output folder** (``checkpoint-500/``, ``checkpoint-1000/`` ...) is a trajectory
  ordered by step; each checkpoint's ``trainer_state.json`` gives its step, epoch and the logged
  metrics (``log_history``).
* A **PEFT/LoRA adapter folder** (``adapter_config.json`` + ``adapter_model.safetensors``) is
  read with its base model folder (``base_model_name_or_path``, which must be local): the merged
  weights W + (alpha / r) B A, and the adapter's own tensors.

Nothing here imports transformers: the folders are plain JSON, safetensors and weights-only pickles.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lsdb.checkpoints.digests import DTYPE_CODES
from lsdb.checkpoints.formats import LoadedCheckpoint, normalize_state_dict
from lsdb.errors import BadInput

CONFIG = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
ADAPTER_CONFIG = "adapter_config.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_CODES = {code: dtype for dtype, code in DTYPE_CODES.items()}
READ_BUFFER = 16 * 2**20


def is_model_folder(path: Path) -> bool:
    """A folder that is one checkpoint: it holds config.json (or an adapter config)."""
    return path.is_dir() and ((path / CONFIG).is_file() or (path / ADAPTER_CONFIG).is_file())


def trainer_checkpoints(path: Path) -> list[Path]:
    """The ``checkpoint-N`` sub-folders of a Trainer output folder, by step ([] when there are none)."""
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if p.is_dir() and (m := _CHECKPOINT_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


@dataclass(frozen=True)
class TensorMeta:
    """A tensor not yet read: what schema digests and model checks need (dtype, shape, numel)."""

    dtype: torch.dtype
    shape: torch.Size
    file: Path
    start: int
    stop: int

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= int(s)
        return n

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point


@dataclass
class StreamedCheckpoint:
    """A safetensors model folder read lazily: `tensors` holds `TensorMeta`; `chunks()` yields the
    canonical safetensors bytes (the same bytes `canonical_chunks` would give for the loaded tensors)."""

    tensors: dict[str, TensorMeta]
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    #: filled by `chunks()` as the bytes stream past: "'name' in FILE" for each NaN/Inf floating tensor
    nonfinite: list[str] = field(default_factory=list)

    def chunks(self) -> Iterator[memoryview]:
        header: dict[str, dict[str, object]] = {}
        offset = 0
        for name in sorted(self.tensors):
            meta = self.tensors[name]
            size = meta.stop - meta.start
            header[name] = {"dtype": DTYPE_CODES[meta.dtype], "shape": list(meta.shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header, separators=(",", ":")).encode("ascii")
        text += b" " * (-len(text) % 8)
        yield memoryview(struct.pack("<Q", len(text)) + text)
        buf = bytearray(READ_BUFFER)
        handles: dict[Path, Any] = {}
        try:
            for name in sorted(self.tensors):
                meta = self.tensors[name]
                if meta.file not in handles:
                    handles[meta.file] = open(meta.file, "rb", buffering=0)  # noqa: SIM115 - closed below
                handle = handles[meta.file]
                handle.seek(meta.start)
                left, finite = meta.stop - meta.start, True
                while left:
                    n = _read_full(handle, memoryview(buf)[: min(left, READ_BUFFER)])
                    if not n:
                        raise BadInput(f"{meta.file}: ends inside tensor {name!r}")
                    if finite and meta.dtype.is_floating_point:
                        finite = _all_finite(memoryview(buf)[:n], meta.dtype)
                    yield memoryview(buf)[:n]
                    left -= n
                if not finite:
                    self.nonfinite.append(f"{name!r} in {meta.file}")
        finally:
            for handle in handles.values():
                handle.close()


def _read_full(handle: Any, view: memoryview) -> int:
    """Fill `view` from `handle` (short reads continued) so that a chunk holds whole elements; the
    bytes read (fewer only at the end of the file)."""
    got = 0
    while got < len(view):
        n = handle.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _all_finite(data: memoryview, dtype: torch.dtype) -> bool:
    """Whether the raw little-endian elements in `data` are all finite (no NaN, no ±Inf)."""
    values = torch.frombuffer(data, dtype=dtype)
    if dtype.itemsize == 1:  # float8: isfinite is not implemented for it on every build
        values = values.to(torch.float32)
    return bool(torch.isfinite(values).all())


def safetensors_header(file: Path) -> dict[str, TensorMeta]:
    """The tensors of a safetensors file, from its header alone (no tensor is read)."""
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(file.stat().st_size - 8, 100 * 2**20):
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise BadInput(f"{file}: not a readable safetensors file ({exc})") from None
    base = 8 + length
    out: dict[str, TensorMeta] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _CODES.get(entry["dtype"])
        if dtype is None:
            raise BadInput(f"{file}: tensor {name!r} has dtype {entry['dtype']}, which lsdb cannot store")
        start, stop = entry["data_offsets"]
        out[name] = TensorMeta(dtype, torch.Size(entry["shape"]), file, base + start, base + stop)
    return out


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder; a missing shard or no weights at all is `BadInput` naming it."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise BadInput(f"{index}: not a readable shard index ({exc})") from None
            shards = sorted(set(weight_map.values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise BadInput(f"{folder}: shard {missing[0]} named by {index_name} is missing"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            return [folder / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    found = sorted(p.name for p in folder.iterdir())[:8]
    raise BadInput(f"{folder}: a config.json but no weights (expected one of {', '.join(WEIGHT_FILES)}; "
                   f"found: {', '.join(found)})")


def trainer_state(folder: Path) -> tuple[int | None, float | None, dict[str, float], list[dict[str, Any]]]:
    """(step, epoch, the metrics logged at that step, the whole log history) from trainer_state.json."""
    file = folder / "trainer_state.json"
    if not file.is_file():
        return None, None, {}, []
    try:
        state = json.loads(file.read_text())
    except (OSError, ValueError):
        return None, None, {}, []
    step = state.get("global_step")
    epoch = state.get("epoch")
    history = [h for h in state.get("log_history") or [] if isinstance(h, dict)]
    metrics: dict[str, float] = {}
    for entry in history:
        if entry.get("step") == step:
            metrics.update({k: float(v) for k, v in entry.items() if k not in ("step", "epoch")
                            and isinstance(v, int | float) and not isinstance(v, bool)})
    return (int(step) if isinstance(step, int) else None, float(epoch) if isinstance(epoch, int | float) else None,
            metrics, history)


def read_model_folder(folder: Path) -> StreamedCheckpoint | LoadedCheckpoint:
    """One model folder: streamed (safetensors) or loaded (pytorch_model.bin, adapters), with trainer state."""
    folder = Path(folder)
    if (folder / ADAPTER_CONFIG).is_file() and not (folder / CONFIG).is_file():
        return read_adapter_folder(folder)
    if not (folder / CONFIG).is_file():
        found = sorted(p.name for p in folder.iterdir())[:8]
        raise BadInput(f"{folder}: not a Hugging Face model folder: no config.json (found: {', '.join(found)})")
    files = weight_files(folder)
    step, epoch, metrics, history = trainer_state(folder)
    if all(f.suffix == ".safetensors" for f in files):
        tensors: dict[str, TensorMeta] = {}
        for file in files:
            tensors.update(safetensors_header(file))
        if not tensors:
            raise BadInput(f"{folder}: the weight files hold no tensors")
        return StreamedCheckpoint(tensors, step, epoch, metrics, [f"read from {len(files)} file(s) of {folder.name}"],
                                  history)
    state = load_state_dict_files(files)
    tensors_loaded, notes = normalize_state_dict(folder, state)
    return LoadedCheckpoint(tensors_loaded, step, None if epoch is None else int(epoch), metrics, notes)


def load_state_dict_files(files: list[Path]) -> dict[str, Tensor]:
    """Tensors of safetensors or weights-only torch files (shards), merged."""
    from safetensors.torch import load_file

    from lsdb.checkpoints.torch_files import load_weights_only

    state: dict[str, Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            state.update(load_file(str(file)))
        else:
            loaded = load_weights_only(file)
            if not isinstance(loaded, dict):
                raise BadInput(f"{file}: expected a state dict, found {type(loaded).__name__}")
            state.update(loaded)
    return state


def read_adapter_folder(folder: Path) -> LoadedCheckpoint:
    """A LoRA adapter merged into its (local) base model: W + (alpha / r) B A on each adapted weight.

    The adapter's own tensors are kept in `notes`-free form by `adapter_tensors`; the base folder
    is named in the notes (and stored by ingest as the checkpoint's ``base_model``)."""
    merged, _, notes = merge_adapter(folder)
    return LoadedCheckpoint(merged, None, None, {}, notes)


def adapter_tensors(folder: Path) -> dict[str, Tensor]:
    """The adapter file's tensors as saved by PEFT (``...lora_A.weight`` ...)."""
    files = [folder / n for n in ("adapter_model.safetensors", "adapter_model.bin") if (folder / n).is_file()]
    if not files:
        raise BadInput(f"{folder}: an adapter_config.json without adapter_model.safetensors or adapter_model.bin")
    return load_state_dict_files(files[:1])


def adapter_base(folder: Path) -> Path:
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    base = config.get("base_model_name_or_path")
    if not base or not Path(base).expanduser().is_dir():
        raise BadInput(f"{folder}: the adapter's base model {base!r} is not a local folder; lsdb never downloads "
                       "(save the base with save_pretrained and set base_model_name_or_path to it)")
    return Path(base).expanduser()


def merge_adapter(folder: Path) -> tuple[dict[str, Tensor], dict[str, Tensor], list[str]]:
    """(merged weights, adapter tensors, notes) of a LoRA adapter folder."""
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise BadInput(f"{folder}: PEFT type {config.get('peft_type')} is not supported (LoRA only)")
    base_folder = adapter_base(folder)
    base = load_state_dict_files(weight_files(base_folder))
    base, notes = normalize_state_dict(base_folder, base)
    adapter = adapter_tensors(folder)
    r = int(config["r"])
    scale = float(config.get("lora_alpha", r)) / r
    fan_in_fan_out = bool(config.get("fan_in_fan_out", False))
    merged = {k: v.clone() for k, v in base.items()}
    done = 0
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        b = adapter[key.replace(".lora_A.", ".lora_B.")]
        target = key.split(".lora_A.")[0].removeprefix("base_model.model.") + ".weight"
        if target not in merged:
            raise BadInput(f"{folder}: the adapter targets {target!r}, which the base model {base_folder} lacks")
        delta = (b.float() @ a.float()) * scale
        if fan_in_fan_out:
            delta = delta.t()
        merged[target] = (merged[target].float() + delta).to(merged[target].dtype)
        done += 1
    for key, value in adapter.items():  # modules_to_save (e.g. a classifier head) replace the base's
        if ".modules_to_save." in key:
            name = key.removeprefix("base_model.model.").replace(".modules_to_save.default.", ".")
            merged[name] = value.contiguous()
    notes = [*notes, f"LoRA adapter merged into base {base_folder} ({done} weights, scale {scale:g})"]
    return merged, adapter, notes
