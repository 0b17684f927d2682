"""The catalog: runs, checkpoints, results and jobs in SQLite or PostgreSQL."""

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
from lsdb.catalog.store import Catalog

__all__ = [
    "BlobRecord",
    "Catalog",
    "CheckpointRecord",
    "MetricRecord",
    "NewCheckpoint",
    "NewResult",
    "NewRun",
    "ResultInputRecord",
    "ResultRecord",
    "RunRecord",
]
