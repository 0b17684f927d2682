"""The service layer: lsdb's Python API (`Catalog`, `Result`, `Job`), which the CLI, the scripts
and notebooks all call. Nothing above this layer reaches into the catalog, the queue or the runner."""

from lsdb.analyses.contract import MemoryEstimate
from lsdb.service.catalog import (
    Catalog,
    DoctorReport,
    RunsPage,
    WorkerStatus,
    open_catalog,
)
from lsdb.service.jobs import Job
from lsdb.service.listing import format_spec
from lsdb.service.registry import add_plugin_commands, describe_analysis, get_analysis, list_analyses, list_plugins
from lsdb.service.results import Result
from lsdb.service.schema import catalog_revision, upgrade_catalog

__all__ = [
    "add_plugin_commands",
    "format_spec",
    "describe_analysis",
    "get_analysis",
    "list_analyses",
    "list_plugins",
    "Catalog",
    "DoctorReport",
    "Job",
    "MemoryEstimate",
    "Result",
    "RunsPage",
    "WorkerStatus",
    "catalog_revision",
    "open_catalog",
    "upgrade_catalog",
]
