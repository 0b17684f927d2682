"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_surfaces.interpolate import INTERPOLATE
from lsdb_surfaces.renderers import RENDERERS
from lsdb_surfaces.surface import SURFACE
from lsdb_surfaces.trajectory import TRAJECTORY

ANALYSES = (INTERPOLATE, SURFACE, TRAJECTORY)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `interpolate`, `surface` and `trajectory`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)
