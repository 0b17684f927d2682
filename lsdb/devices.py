"""Which device a computation runs on: the one rule every part of lsdb uses.

``auto`` is the first CUDA device when torch sees one, else the CPU; ``cuda`` is ``cuda:0``;
``cuda:N`` must exist; ``cpu`` is the CPU. Anything else, or a GPU that is not there, is a
one-line `BadInput` naming what to use instead. The answer is a canonical string (``"cpu"``,
``"cuda:1"``), what workers record and ``torch.device`` takes.
"""

from __future__ import annotations

from lsdb.errors import BadInput


def resolve_device(name: str | None = "auto") -> str:
    """The canonical device for `name` (see the module docstring)."""
    text = (name or "auto").strip().lower()
    if text == "cpu":
        return "cpu"
    if text not in ("auto", "cuda") and not text.startswith("cuda:"):
        raise BadInput(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto")
    import torch

    if not torch.cuda.is_available():
        if text == "auto":
            return "cpu"
        raise BadInput(f"device '{name}' requested but CUDA is not available here; use --device cpu")
    index = text.partition(":")[2]
    if not index:
        return "cuda:0"
    if not index.isdigit():
        raise BadInput(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto")
    if int(index) >= torch.cuda.device_count():
        raise BadInput(f"device cuda:{index} does not exist ({torch.cuda.device_count()} GPU(s) visible)")
    return f"cuda:{int(index)}"
