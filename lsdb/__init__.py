"""lsdb: a loss-landscape database.

Public API (importing `lsdb` is cheap; names load on first use)::

    import lsdb
    catalog = lsdb.open_catalog()                 # the same object the CLI uses
    with lsdb.record(run="mine", model="mlp", dataset="digits") as rec:
        rec.checkpoint(model, step=100, metrics={"loss": 0.1})

For plugin authors: `lsdb.hookimpl`, `lsdb.AnalysisSpec`, `lsdb.Slot`, `lsdb.AnalysisOutput`,
`lsdb.NewCheckpointOutput`, `lsdb.Context`, `lsdb.ResultView`; the math in `lsdb.landscape`;
helpers for tests in `lsdb.testing`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lsdb.catalog import CatalogDB
    from lsdb.recorder import Recorder

_LAZY = {
    "hookimpl": ("lsdb.hookspecs", "hookimpl"),
    "AnalysisSpec": ("lsdb.analyses.spec", "AnalysisSpec"),
    "Slot": ("lsdb.analyses.spec", "Slot"),
    "AnalysisOutput": ("lsdb.analyses.spec", "AnalysisOutput"),
    "NewCheckpointOutput": ("lsdb.analyses.spec", "NewCheckpointOutput"),
    "Context": ("lsdb.analyses.context", "Context"),
    "InputCheckpoint": ("lsdb.analyses.context", "InputCheckpoint"),
    "ResultView": ("lsdb.analyses.view", "ResultView"),
    "LsdbError": ("lsdb.errors", "LsdbError"),
    "BadInput": ("lsdb.errors", "BadInput"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lsdb' has no attribute {name!r}")


def open_catalog(url: str | None = None, store: str | os.PathLike[str] | None = None) -> CatalogDB:
    """Open (creating at the current schema if new) the catalog at `url`.

    `url` defaults to ``LSDB_DATABASE_URL``, else ``$LSDB_HOME/catalog.sqlite``; `store`
    to ``LSDB_STORE``, else a ``store`` folder beside the SQLite file.
    """
    from lsdb.catalog import CatalogDB
    from lsdb.config import Settings

    return CatalogDB(Settings.resolve(url, store))


def record(
    run: str,
    model: str | dict[str, Any] | None = None,
    dataset: str | dict[str, Any] | None = None,
    project: str = "default",
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    catalog: CatalogDB | None = None,
    loss: str | None = None,
) -> AbstractContextManager[Recorder]:
    """Record checkpoints and metrics from your own training loop into run `project/run`.

    ``with lsdb.record(...) as rec:`` then ``rec.checkpoint(model, step=..., metrics={...})`` and
    ``rec.log(key, value, step)``. The run ends ``complete``, or ``incomplete`` if the block
    raises. See `lsdb.recorder.record`.
    """
    from lsdb.recorder import record as _record

    return _record(run, model, dataset, project, params, tags, catalog, loss)


__all__ = ["__version__", "open_catalog", "record", *_LAZY]
