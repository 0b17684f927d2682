"""Helpers for plugin authors' tests: a temporary catalog, real checkpoints, an inline runner.

::

    from lsdb.testing import temp_catalog, add_model_checkpoint, run_inline

    def test_my_analysis(tmp_path):
        with temp_catalog(tmp_path, plugins=["my_plugin.plugin"]) as catalog:
            ckpt = add_model_checkpoint(catalog, "r", "mlp:widths=[16]", "digits", seed=0)
            result = run_inline(catalog, "my-analysis", [ckpt.id], {"steps": 5})
            assert result.scalars["my_scalar"] > 0
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lsdb.catalog import CatalogDB, CheckpointRecord, ResultRecord


@contextlib.contextmanager
def temp_catalog(folder: str | os.PathLike[str], plugins: Sequence[str] = ()) -> Iterator[CatalogDB]:
    """A fresh SQLite catalog and store under `folder`; `plugins` are extra plugin modules
    to load (as ``LSDB_EXTRA_PLUGINS`` does) for the duration of the block."""
    from lsdb.config import Settings
    from lsdb.plugins import reset_plugins

    folder = Path(folder)
    old = os.environ.get("LSDB_EXTRA_PLUGINS")
    if plugins:
        os.environ["LSDB_EXTRA_PLUGINS"] = ",".join([*(old.split(",") if old else []), *plugins])
    reset_plugins()
    catalog = CatalogDB(Settings(f"sqlite:///{folder / 'catalog.sqlite'}", folder / "store"))
    try:
        yield catalog
    finally:
        catalog.close()
        if plugins:
            if old is None:
                os.environ.pop("LSDB_EXTRA_PLUGINS", None)
            else:
                os.environ["LSDB_EXTRA_PLUGINS"] = old
        reset_plugins()


def open_db(url: str, store: str | os.PathLike[str]) -> CatalogDB:
    """The catalog's database and store without the `lsdb.Catalog` facade (tests of internals)."""
    from lsdb.config import Settings

    return CatalogDB(Settings.resolve(url, store))


def add_model_checkpoint(
    catalog: CatalogDB, run: str, model: str, dataset: str, seed: int = 0, step: int | None = None
) -> CheckpointRecord:
    """Build `model` for `dataset` with initial weights from `seed` and store it in `run`."""
    from lsdb.data import load_dataset
    from lsdb.ingest import add_tensors
    from lsdb.models import build_model
    from lsdb.runs import make_new_run

    data = load_dataset(dataset)
    net = build_model(model, data.input_shape, data.num_classes, seed=seed)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    record, _ = add_tensors(catalog, make_new_run(run, model=model, dataset=dataset), state, step=step)
    return record


def run_inline(
    catalog: CatalogDB,
    analysis: str,
    inputs: Sequence[str | int],
    params: dict[str, Any] | None = None,
    **request: Any,
) -> ResultRecord:
    """Run an analysis now, exactly as `lsdb run --inline` does, and return its result."""
    from lsdb.analyses.runner import AnalysisRequest, run_analysis

    req = AnalysisRequest(analysis=analysis, inputs=[str(i) for i in inputs], params=dict(params or {}), **request)
    result, _ = run_analysis(catalog, req, device="cpu")
    return result
