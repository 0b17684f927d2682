"""The hooks a plugin can implement (pluggy project ``lsdb``, entry-point group ``lsdb``).

Registration hooks receive a ``register`` callback; lsdb validates what is registered and
turns a duplicate name, a wrong type or an exception into a `PluginError` naming the plugin.
Event hooks are named in the past tense and must not raise. lsdb's own models, datasets,
checkpoint formats and analyses are registered through these same hooks by its default
plugins, so a third-party plugin is a first-class citizen.

Implement them with the `lsdb.hookimpl` marker::

    import lsdb

    @lsdb.hookimpl
    def register_analyses(register):
        register(MY_ANALYSIS_SPEC)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from lsdb.analyses.contract import AnalysisSpec
    from lsdb.catalog.records import CheckpointRecord

hookspec = pluggy.HookspecMarker("lsdb")
hookimpl = pluggy.HookimplMarker("lsdb")


@hookspec
def register_analyses(register: Callable[[AnalysisSpec], None]) -> None:
    """Register analyses: call ``register(spec)`` once per `lsdb.AnalysisSpec`.

    An analysis name must be unique across all plugins; `lsdb analyses` lists them.
    """


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register model factories: ``register(name, factory, doc=None)``.

    ``factory(input_shape, num_classes, **kwargs) -> torch.nn.Module``; its typed keyword
    arguments with defaults are what a model spec (``name:key=value,...``) may set.
    """


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register dataset factories: ``register(name, factory, doc=None)``.

    ``factory(**kwargs) -> lsdb.data.Dataset``; never download at run time.
    """


@hookspec
def register_checkpoint_formats(register: Callable[..., None]) -> None:
    """Register checkpoint readers: ``register(fmt)`` with an object that has ``name``,
    ``suffixes`` and ``read(path) -> LoadedCheckpoint``. Readers must never execute code
    from the file (no unrestricted unpickling).
    """


@hookspec
def register_renderers(register: Callable[..., None]) -> None:
    """Register plot renderers: ``register(analysis_name, renderer, name="default")``.

    ``renderer(result: ResultView) -> matplotlib.figure.Figure``; `lsdb plot` picks the
    analysis' renderer by name (``--kind``).
    """


@hookspec
def register_interactive_renderers(register: Callable[..., None]) -> None:
    """Register interactive views for `lsdb ui` and HTML exports: ``register(analysis_name, fn, name="default")``.

    ``fn(result: ResultView) -> dict``: a plotly figure as JSON-ready data (``{"data": [...],
    "layout": {...}}``). An analysis without one is shown with its PNG renderer.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add sub-commands to the `lsdb` Typer app (keep them thin: parse, call, render)."""


@hookspec
def checkpoint_ingested(checkpoint: CheckpointRecord) -> None:
    """Called after a checkpoint was newly added to the catalog (by ingest, train or record)."""


@hookspec
def result_stored(result: Any) -> None:
    """Called after an analysis result was committed to the catalog."""


@hookspec
def job_finished(job: Any) -> None:
    """Called by a worker after a job reached a final state (succeeded, failed or cancelled)."""
