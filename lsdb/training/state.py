"""The resume state: what continuing a run exactly needs besides its weights, as one safetensors object.

Optimizer tensors (e.g. SGD momentum buffers, Adam moments) and RNG states are the tensors;
step, epoch, batch, the optimizer's param groups and non-tensor state, and the settings a resume
may keep go into the header's metadata as JSON. Stored beside the checkpoint, never inside it.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any

from lsdb.errors import StoreError
from lsdb.training.config import RESUMABLE_CHANGES

if TYPE_CHECKING:
    from lsdb.landscape.training import TrainConfig, TrainState

RESUME_FORMAT = "lsdb-train-state/1"


def encode_resume_state(state: TrainState, config: TrainConfig) -> bytes:
    """A safetensors file: optimizer tensors and RNG states, the rest as JSON in its metadata."""
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {f"rng.{k}": v for k, v in state.rng.items()}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in state.optimizer["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {
        "format": RESUME_FORMAT,
        "step": state.step,
        "epoch": state.epoch,
        "batch": state.batch,
        "epochs_done": state.epochs_done,
        "param_groups": state.optimizer["param_groups"],
        "scalars": scalars,
        "settings": {k: getattr(config, k) for k in RESUMABLE_CHANGES if k != "epochs"},
    }
    return save(tensors, metadata={"lsdb": json.dumps(meta, sort_keys=True)})


def decode_resume_state(data: bytes) -> tuple[TrainState, dict[str, Any]]:
    """The `TrainState` (without model weights) and the saved settings of `encode_resume_state`."""
    from safetensors.torch import load

    from lsdb.landscape.training import TrainState

    try:
        (length,) = struct.unpack("<Q", data[:8])
        meta = json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["lsdb"])
        tensors = load(data)
    except Exception as exc:
        raise StoreError(f"the saved training state is unreadable ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != RESUME_FORMAT:
        raise StoreError(f"unknown training state format {meta.get('format')!r}; expected {RESUME_FORMAT}")
    per_param: dict[int, dict[str, Any]] = {int(p): dict(v) for p, v in meta["scalars"].items()}
    rng = {}
    for name, tensor in tensors.items():
        kind, _, rest = name.partition(".")
        if kind == "rng":
            rng[rest] = tensor
        else:
            pid, _, key = rest.partition(".")
            per_param.setdefault(int(pid), {})[key] = tensor
    optimizer = {"state": per_param, "param_groups": meta["param_groups"]}
    state = TrainState(meta["step"], meta["epoch"], meta["batch"], optimizer, rng, None, meta["epochs_done"])
    return state, meta["settings"]
