"""lsdb: a loss-landscape database.

The Python API (importing `lsdb` is cheap; names load on first use)::

    import lsdb
    cat = lsdb.open_catalog("demo.sqlite")          # the same verbs the CLI has
    cat.train("sb", model="mlp:widths=[64,64]", dataset="digits", epochs=5)
    result = cat.run("surface", "sb:last", xnum=21, ynum=21)
    fig = result.plot(kind="contour")

`lsdb.Catalog` (what `open_catalog` returns), `lsdb.Result`, `lsdb.Job`; `lsdb.record(...)` for your
own training loop. For plugin authors: `lsdb.plugin` (the whole contract), the math in
`lsdb.landscape`, figures in `lsdb.plotting`, helpers for tests in `lsdb.testing`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from lsdb._version import __version__

if TYPE_CHECKING:
    from lsdb.recorder import Recorder
    from lsdb.service import Catalog

_LAZY = {
    "Catalog": ("lsdb.service", "Catalog"),
    "Result": ("lsdb.service", "Result"),
    "Job": ("lsdb.service", "Job"),
    "hookimpl": ("lsdb.hookspecs", "hookimpl"),
    "AnalysisSpec": ("lsdb.analyses.contract", "AnalysisSpec"),
    "Slot": ("lsdb.analyses.contract", "Slot"),
    "AnalysisOutput": ("lsdb.analyses.contract", "AnalysisOutput"),
    "NewCheckpointOutput": ("lsdb.analyses.contract", "NewCheckpointOutput"),
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


def open_catalog(url: str | None = None, store: str | os.PathLike[str] | None = None) -> Catalog:
    """Open (creating at the current schema if new) the catalog at `url`: an `lsdb.Catalog`.

    `url` is a SQLite file path or a database URL; it defaults to ``LSDB_DATABASE_URL``, else
    ``$LSDB_HOME/catalog.sqlite``. `store` defaults to ``LSDB_STORE``, else a ``store`` folder
    beside the SQLite file.
    """
    from lsdb.service import open_catalog as _open

    return _open(url, store)


def record(
    run: str,
    model: str | dict[str, Any] | None = None,
    dataset: str | dict[str, Any] | None = None,
    project: str = "default",
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    catalog: Catalog | Any | None = None,
    loss: str | None = None,
) -> AbstractContextManager[Recorder]:
    """Record checkpoints and metrics from your own training loop into run `project/run`.

    ``with lsdb.record(...) as rec:`` then ``rec.checkpoint(model, step=..., metrics={...})`` and
    ``rec.log(key, value, step)``. The run ends ``complete``, or ``incomplete`` if the block
    raises. See `lsdb.recorder.record`.
    """
    from lsdb.recorder import record as _record

    db: Any = getattr(catalog, "_db", catalog)  # an lsdb.Catalog, or its database
    return _record(run, model, dataset, project, params, tags, db, loss, getattr(catalog, "_registries", None))


__all__ = ["__version__", "open_catalog", "record", *_LAZY]
