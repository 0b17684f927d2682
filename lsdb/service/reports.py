"""Small answers of the facade: a worker and whether it is alive, what `doctor` found, a page of runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsdb.catalog import RunRecord
    from lsdb.catalog.jobs import WorkerRecord
    from lsdb.maintenance import DoctorFinding


@dataclass(frozen=True)
class WorkerStatus:
    """A registered worker and whether it is alive (heartbeat within three leases)."""

    worker: WorkerRecord
    alive: bool


@dataclass(frozen=True)
class DoctorReport:
    """What `Catalog.doctor` found: how many objects it re-hashed and which are missing or corrupt."""

    checked: int
    findings: list[DoctorFinding]

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class RunsPage:
    """One page of `Catalog.runs_page`: `total` runs matched; `runs` are those at `offset`..`offset+limit`."""

    total: int
    offset: int
    limit: int
    runs: list[RunRecord]
