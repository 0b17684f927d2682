"""State dicts as flat parameter vectors, and back.

Landscape math works on one vector per checkpoint. The order is the sorted order of the
floating tensors' names (`float_keys`), the same order the tensor digest uses, so two
checkpoints with the same schema digest flatten to comparable vectors. Integer and bool
buffers (e.g. `num_batches_tracked`) are not coordinates; `unflatten` carries them over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from lsdb.checkpoints.digests import DTYPE_CODES


def float_keys(tensors: Mapping[str, Tensor]) -> list[str]:
    """Sorted names of the floating tensors: the coordinates of the flat vector."""
    return sorted(name for name, t in tensors.items() if t.is_floating_point())


def flatten(
    tensors: Mapping[str, Tensor], keys: Sequence[str] | None = None, dtype: torch.dtype = torch.float64
) -> Tensor:
    """One vector holding `tensors[k]` for k in `keys` (default `float_keys`), cast to `dtype`."""
    keys = float_keys(tensors) if keys is None else keys
    if not keys:
        return torch.zeros(0, dtype=dtype)
    return torch.cat([tensors[k].detach().reshape(-1).to(dtype) for k in keys])


def unflatten(vec: Tensor, like: Mapping[str, Tensor], keys: Sequence[str] | None = None) -> dict[str, Tensor]:
    """A state dict shaped like `like` whose `keys` (default `float_keys(like)`) come from `vec`.

    Each slice takes the shape and dtype of its tensor in `like` and stays on `vec`'s device;
    entries not in `keys` are passed through from `like` unchanged, so the result loads
    into a module with `load_state_dict`.
    """
    keys = float_keys(like) if keys is None else keys
    total = sum(like[k].numel() for k in keys)
    if vec.dim() != 1 or vec.numel() != total:
        raise ValueError(f"vector has shape {tuple(vec.shape)}; the keys need {total} elements")
    out = dict(like)
    offset = 0
    for k in keys:
        n = like[k].numel()
        out[k] = vec[offset : offset + n].reshape(like[k].shape).to(like[k].dtype)
        offset += n
    return out


def _code(dtype: torch.dtype) -> str:
    return DTYPE_CODES.get(dtype, str(dtype))


def schema_diff(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> list[str]:
    """One line per tensor whose name, shape or dtype differs between `a` and `b`; empty when equal."""
    lines = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            lines.append(f"{name}: only in the first")
        elif name not in a:
            lines.append(f"{name}: only in the second")
        else:
            ta, tb = a[name], b[name]
            if ta.shape != tb.shape:
                lines.append(f"{name}: shape {list(ta.shape)} vs {list(tb.shape)}")
            elif ta.dtype != tb.dtype:
                lines.append(f"{name}: dtype {_code(ta.dtype)} vs {_code(tb.dtype)}")
    return lines
