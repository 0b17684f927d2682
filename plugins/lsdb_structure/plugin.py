"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_structure.mconnector import MCONNECTOR
from lsdb_structure.minima_map import MINIMA_MAP
from lsdb_structure.renderers import RENDERERS
from lsdb_structure.tunnel import TUNNEL
from lsdb_structure.tunnel_width import TUNNEL_WIDTH
from lsdb_structure.wedge_sim import WEDGE_SIM

ANALYSES = (TUNNEL, MCONNECTOR, TUNNEL_WIDTH, WEDGE_SIM, MINIMA_MAP)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `tunnel`, `mconnector`, `tunnel-width`, `wedge-sim` and `minima-map`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)
