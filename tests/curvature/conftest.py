"""Fixtures of the curvature tests: ``plugins/`` importable, one torch thread, and tiny float64 problems.

The math is checked against independent references: dense Hessians from `torch.func.hessian`
of a loss written out by hand here, and their eigenvalues from `torch.linalg.eigvalsh`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny problems run fastest, and least disturbed by a busy machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
