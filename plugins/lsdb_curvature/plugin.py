"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_curvature.eigenmap import EIGENMAP
from lsdb_curvature.hessian import HESSIAN
from lsdb_curvature.hessian_trajectory import HESSIAN_TRAJECTORY
from lsdb_curvature.renderers import RENDERERS

ANALYSES = (HESSIAN, HESSIAN_TRAJECTORY, EIGENMAP)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `hessian`, `hessian-trajectory` and `eigenmap`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)
