"""What float32 arithmetic means on CUDA: IEEE float32, unless TF32 is asked for by name.

PyTorch runs float32 *convolutions* on CUDA in TF32 by default (``torch.backends.cudnn.conv.fp32_precision``
is ``"tf32"``: a 10-bit mantissa, relative errors near 1e-3) while its matrix products stay IEEE float32.
A float32 landscape in lsdb is float32 whatever the layers, so every CUDA evaluation and Hessian product
runs inside `float32_math`, which pins both to ``"ieee"``. Inside `allow_tf32()` it pins both to
``"tf32"`` instead: faster on Ampere and later GPUs and not the same arithmetic, so
`lsdb.landscape.precision` offers it only with its error measured against IEEE float32. On a CPU neither
does anything (oneDNN's float32 math is left as it is: IEEE unless the user changed it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import torch

_TF32: ContextVar[bool] = ContextVar("lsdb_allow_tf32", default=False)

P = ParamSpec("P")
R = TypeVar("R")


class _OnDevice(Protocol):
    device: torch.device


@contextlib.contextmanager
def allow_tf32() -> Iterator[None]:
    """Let the evaluations and products run inside this block use TF32 on CUDA (`float32_math`)."""
    token = _TF32.set(True)
    try:
        yield
    finally:
        _TF32.reset(token)


def tf32_allowed() -> bool:
    """Whether the caller is inside `allow_tf32()`."""
    return _TF32.get()


@contextlib.contextmanager
def float32_math(device: torch.device | str) -> Iterator[None]:
    """On a CUDA `device`: float32 matmuls and convolutions in IEEE float32 (TF32 inside `allow_tf32()`),
    restored afterwards. On any other device: nothing."""
    if torch.device(device).type != "cuda":
        yield
        return
    mode = "tf32" if _TF32.get() else "ieee"
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv  # type: ignore[attr-defined]
    saved = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision, conv.fp32_precision = mode, mode
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def pinned_float32(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """Run a method of an object with a ``device`` inside `float32_math(self.device)` (a no-op off CUDA)."""

    @functools.wraps(method)
    def wrapper(self: _OnDevice, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.device.type != "cuda":
            return method(self, *args, **kwargs)
        with float32_math(self.device):
            return method(self, *args, **kwargs)

    return wrapper
