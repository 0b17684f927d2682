"""Fixtures of the spectra tests: ``plugins/`` importable, one torch thread, the plugin loaded for catalogs.

References are independent of the code under test: `weightwatcher` 0.7.7 and `powerlaw` 2.0.0
(installed from PyPI for the parity tests; they are skipped without them), NumPy SVDs, and
closed forms (quadratic losses, linear losses, rescaling invariance).
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

PLUGIN = "lsdb_spectra.plugin"


def extra_plugins() -> list[str]:
    """What `temp_catalog(plugins=...)` must add: the plugin, unless lsdb already loads it by default."""
    from lsdb.plugins import DEFAULT_PLUGINS

    return [] if PLUGIN in {module for _, module in DEFAULT_PLUGINS} else [PLUGIN]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny problems run fastest, and least disturbed by a busy machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def spectra_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`lsdb_spectra` loaded as an extra plugin (it is not yet among lsdb's default plugins)."""
    from lsdb.plugins import DEFAULT_PLUGINS, reset_plugins

    if PLUGIN in {module for _, module in DEFAULT_PLUGINS}:  # once it is a default plugin: nothing to add
        yield
        return
    monkeypatch.setenv("LSDB_EXTRA_PLUGINS", PLUGIN)
    reset_plugins()
    yield
    monkeypatch.delenv("LSDB_EXTRA_PLUGINS")
    reset_plugins()
