"""The catalog: runs, checkpoints, results and jobs in SQLite or PostgreSQL.

`CatalogDB` composes one `Database` (engine and transactions), the object store and one small
repository per table family: ``runs``, ``metrics``, ``checkpoints``, ``results``, ``blobs``,
``jobs``, ``workers`` and ``compare``. Every repository method is one transaction.
"""

from lsdb.catalog.catalog_db import CatalogDB
from lsdb.catalog.jobs import ACTIVE, FINAL, Fence, Heartbeat, JobEventRecord, JobRecord, NewJob, WorkerRecord
from lsdb.catalog.records import (
    BlobRecord,
    CheckpointRecord,
    MetricRecord,
    NewCheckpoint,
    NewResult,
    NewRun,
    ResultInputRecord,
    ResultRecord,
    RunRecord,
)

__all__ = [
    "ACTIVE",
    "FINAL",
    "BlobRecord",
    "CatalogDB",
    "CheckpointRecord",
    "Fence",
    "Heartbeat",
    "JobEventRecord",
    "JobRecord",
    "MetricRecord",
    "NewCheckpoint",
    "NewJob",
    "NewResult",
    "NewRun",
    "ResultInputRecord",
    "ResultRecord",
    "RunRecord",
    "WorkerRecord",
]
