"""The hook implementations that register this plugin's analyses and renderers with lsdb."""

from __future__ import annotations

from collections.abc import Callable

from lsdb.plugin import hookimpl
from lsdb_spectra.renderers import RENDERERS
from lsdb_spectra.sharpness import SHARPNESS
from lsdb_spectra.trajectory import WEIGHT_SPECTRUM_TRAJECTORY
from lsdb_spectra.views import VIEWS
from lsdb_spectra.weight_spectrum import WEIGHT_SPECTRUM

ANALYSES = (WEIGHT_SPECTRUM, WEIGHT_SPECTRUM_TRAJECTORY, SHARPNESS)


@hookimpl
def register_analyses(register: Callable[..., None]) -> None:
    """Register `weight-spectrum`, `weight-spectrum-trajectory` and `sharpness`."""
    for spec in ANALYSES:
        register(spec)


@hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    """Register the figures of `renderers.RENDERERS` (each analysis has a ``default``)."""
    for analysis, name, renderer in RENDERERS:
        register(analysis, renderer, name=name)


@hookimpl
def register_interactive_renderers(register: Callable[..., None]) -> None:
    """Register the interactive views of `views.VIEWS` (plotly JSON, for `lsdb ui`)."""
    for analysis, name, view in VIEWS:
        register(analysis, view, name=name)
