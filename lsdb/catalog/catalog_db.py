"""`CatalogDB`: the catalog database and its object store, as small repositories over one `Database`.

Each repository method is one transaction and returns frozen records. Writes on SQLite run
under ``BEGIN IMMEDIATE``; inserts that two processes may race on use ``ON CONFLICT DO
NOTHING`` and then read back the winner, so concurrent ingests never duplicate a row.
Files are published to the object store *before* the transaction that refers to them, so a
crash leaves at most an orphan file (removed by `lsdb gc`), never a row without its file.
"""

from __future__ import annotations

from sqlalchemy import Engine

from lsdb.catalog.blobs import BlobRepository
from lsdb.catalog.checkpoints import CheckpointRepository
from lsdb.catalog.compare import CompareRepository
from lsdb.catalog.database import Database
from lsdb.catalog.jobs import JobRepository, WorkerRepository
from lsdb.catalog.results import ResultRepository
from lsdb.catalog.runs import MetricRepository, RunRepository
from lsdb.config import Settings
from lsdb.store import ObjectStore

__all__ = ["CatalogDB"]


class CatalogDB:
    """The catalog: `db` (the engine and its transactions), `objects` (the store) and the repositories."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None, check_schema: bool = True) -> None:
        self.settings = settings
        self.db = Database(settings, engine=engine, check_schema=check_schema)
        self.objects = ObjectStore(settings.store_root)
        self.runs = RunRepository(self.db)
        self.metrics = MetricRepository(self.db)
        self.checkpoints = CheckpointRepository(self.db)
        self.results = ResultRepository(self.db)
        self.blobs = BlobRepository(self.db)
        self.jobs = JobRepository(self.db)
        self.workers = WorkerRepository(self.db)
        self.compare = CompareRepository(self.db)

    def close(self) -> None:
        self.db.close()
