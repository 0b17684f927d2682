"""Fixtures for `lsdb compare`: a small catalog of runs (params, tags, metrics) and results.

Results are inserted as rows, the way the runner will store them: a result, its inputs (a
checkpoint of the run), its scalars and params, and optionally an HDF5 artifact in the store.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsdb.catalog import NewCheckpoint, NewRun
from lsdb.catalog import models as m

_counter = itertools.count()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_run(
    catalog: Any,
    name: str,
    project: str = "default",
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    metrics: dict[str, list[float]] | None = None,
    model: str | None = None,
) -> int:
    """A run with params, tags and metric histories (value i logged at step i); returns its id."""
    spec = {"name": model, "kwargs": {}} if model else None
    run = catalog.runs.add(NewRun(name, project, model_spec=spec, params=params or {}, tags=tags or {}))
    items = [(key, step, v) for key, values in (metrics or {}).items() for step, v in enumerate(values)]
    catalog.metrics.add(run.id, items)
    return run.id


def make_checkpoint(catalog: Any, run: str, project: str = "default", step: int = 0) -> int:
    """A checkpoint row with fake digests (no file): enough for result inputs."""
    tag = f"{project}/{run}/{step}/{next(_counter)}"
    digest = _digest(tag)
    ckpt = NewCheckpoint(
        tensor_digest=digest, schema_digest=_digest("schema"), n_params=10, n_tensors=2,
        blob_digest=digest, blob_size=1, blob_path=f"objects/sha256/{digest[:2]}/{digest[2:]}", step=step,
    )
    record, _ = catalog.checkpoints.add(NewRun(run, project), ckpt)
    return int(record.id)


def make_result(
    catalog: Any,
    analysis: str,
    checkpoints: list[int],
    scalars: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
    roles: list[str] | None = None,
) -> int:
    """A result row with inputs (positions 0.. in one role, or one role each), scalars, params and an artifact."""
    from lsdb.store import HDF5_MEDIA_TYPE, write_artifact

    digest = None
    blob: dict[str, Any] | None = None
    if arrays is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "artifact.h5"
            write_artifact(path, arrays, {"analysis": analysis})
            info = catalog.objects.put_file(path)
        digest = info.digest
        blob = {"digest": digest, "size": info.size, "media_type": HDF5_MEDIA_TYPE, "path": info.relpath,
                "created_at": 0}
    with catalog.db.engine.begin() as conn:
        if blob is not None and conn.execute(
            m.BlobRow.__table__.select().where(m.BlobRow.digest == digest)
        ).first() is None:
            conn.execute(m.BlobRow.__table__.insert().values(**blob))
        result_id = conn.execute(
            m.ResultRow.__table__.insert()
            .values(analysis=analysis, analysis_version=1, cache_key=_digest(f"result-{next(_counter)}"),
                    lsdb_version="0.1.0", created_at=0, artifact_digest=digest)
            .returning(m.ResultRow.id)
        ).scalar_one()
        for position, ckpt in enumerate(checkpoints):
            role, pos = (roles[position], 0) if roles else ("checkpoint", position)
            conn.execute(m.ResultInputRow.__table__.insert().values(
                result_id=result_id, role=role, position=pos, checkpoint_id=ckpt))
        for key, value in (scalars or {}).items():
            conn.execute(m.ResultScalarRow.__table__.insert().values(result_id=result_id, key=key, value=value))
        for key, value in (params or {}).items():
            num = float(value) if isinstance(value, (int, float)) else None
            text = None if num is not None else str(value)
            conn.execute(m.ResultParamRow.__table__.insert().values(
                result_id=result_id, key=key, value_num=num, value_str=text, value_json=value))
    return int(result_id)


RUNS: dict[str, dict[str, Any]] = {
    "a": dict(params={"lr": 0.1, "arch": "resnet", "opt": "sgd", "wd": 5e-4}, tags={"seed": "1"},
              metrics={"test_acc": [0.5, 0.9], "loss": [2.0, 0.3]}, model="resnet"),
    "b": dict(params={"lr": 0.01, "arch": "resnet", "opt": "adam"}, tags={"seed": "2"},
              metrics={"test_acc": [0.4, 0.85], "loss": [2.1, 0.4]}, model="resnet"),
    "c": dict(params={"lr": 0.1, "arch": "vgg", "opt": "sgd"}, tags={"seed": "1", "note": "big batch"},
              metrics={"test_acc": [0.3, 0.7], "loss": [2.2, 0.9]}, model="vgg"),
    "d": dict(params={"lr": 1e-3, "arch": "vgg", "opt": "it's 1; DROP TABLE runs; --"}, tags={"seed": "2"},
              metrics={"loss": [2.3, 1.5]}, model="vgg"),
    "e": dict(params={"arch": "resnet", "flag": True}, metrics={"test_acc": [0.2, 0.95]}),
}


def fill_zoo(catalog: Any) -> Any:
    """Add the `RUNS` to project 'default' and run 'x' (lr 0.1, mlp) to 'other'; returns the catalog."""
    for name, spec in RUNS.items():
        make_run(catalog, name, **spec)
    make_run(catalog, "x", "other", params={"lr": 0.1, "arch": "mlp"}, metrics={"test_acc": [0.6]})
    return catalog


@pytest.fixture
def zoo(any_catalog: Any) -> Any:
    """A catalog holding the zoo, fresh per test (for tests that write)."""
    return fill_zoo(any_catalog)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_zoo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The zoo built once per module and backend, for tests that only read it."""
    from sqlalchemy import create_engine, text

    from lsdb.testing import open_db

    folder = tmp_path_factory.mktemp("zoo")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "catalog.sqlite")
        url = f"sqlite:///{folder / 'catalog.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in m.Base.metadata.sorted_tables)
                              + " RESTART IDENTITY CASCADE"))
        engine.dispose()
    catalog = open_db(url, folder / "store")
    yield fill_zoo(catalog)
    catalog.close()
