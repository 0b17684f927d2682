"""Make the repository's ``plugins/`` folder importable, so ``lsdb_alignment`` can be
tested before packaging installs it."""

from __future__ import annotations

import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
