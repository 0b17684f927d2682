"""Fixtures for the `lsdb_structure` tests: one torch thread, and the plugins folder on the path.

The built-in plugin packages are importable once `pip install -e .` has run; the path entry
makes them importable before that too (as in ``tests/plugins``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture(autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest on one thread, and a busy 2-core box makes two threads thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
