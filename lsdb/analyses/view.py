"""`ResultView`: a stored result as renderers and exporters see it (no database access)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ResultView:
    """One result: identity, parameters, scalars, arrays (NumPy) and input descriptions.

    `inputs` holds one dict per input checkpoint with ``role``, ``position``, ``checkpoint``
    (id), ``run``, ``project``, ``step`` and ``epoch``.
    """

    id: int
    analysis: str
    params: dict[str, Any]
    scalars: dict[str, float]
    arrays: dict[str, np.ndarray]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        runs = sorted({str(i["run"]) for i in self.inputs})
        return f"{self.analysis} #{self.id}" + (f" — {', '.join(runs)}" if runs else "")
