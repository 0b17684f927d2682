"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_alignment.align import ALIGN
from lsdb_alignment.merge import MERGE
from lsdb_alignment.merge_plane import MERGE_PLANE
from lsdb_alignment.renderers import RENDERERS

ANALYSES = (ALIGN, MERGE, MERGE_PLANE)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `align`, `merge` and `merge-plane`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)
