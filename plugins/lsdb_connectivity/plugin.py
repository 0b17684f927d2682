"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_connectivity.curve import CURVE
from lsdb_connectivity.ensemble import ENSEMBLE
from lsdb_connectivity.fge import FGE
from lsdb_connectivity.plane import PLANE
from lsdb_connectivity.renderers import RENDERERS
from lsdb_connectivity.swa import SWA

ANALYSES = (CURVE, PLANE, FGE, SWA, ENSEMBLE)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `curve`, `plane`, `fge`, `swa` and `ensemble`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)
