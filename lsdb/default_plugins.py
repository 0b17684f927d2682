"""lsdb's own registrations, as an ordinary plugin: the model zoo, datasets and checkpoint formats.

Analyses live in the packages under ``plugins/`` (e.g. ``lsdb_surfaces``), which are default
plugins too. Nothing here is special: a third-party plugin uses the same hooks.
"""

from __future__ import annotations

from collections.abc import Callable

from lsdb.hookspecs import hookimpl

__version__ = None  # reported as lsdb's version


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    from lsdb.models.registry import register_builtin_models

    register_builtin_models(register)


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    from lsdb.data.registry import register_builtin_datasets

    register_builtin_datasets(register)


@hookimpl
def register_checkpoint_formats(register: Callable[..., None]) -> None:
    from lsdb.checkpoints.formats import register_builtin_formats

    register_builtin_formats(register)
