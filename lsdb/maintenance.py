"""Keeping the catalog and the store in agreement: `gc` and `doctor`.

`gc` removes store objects that no catalog row refers to (crash leftovers, objects of
deleted rows, temporary files), after a grace period so it never races an ingest that has
published its file but not yet committed its row. `doctor` re-hashes every object the
catalog refers to and reports missing or corrupt ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lsdb.catalog import CatalogDB


@dataclass
class GcReport:
    removed_objects: list[str] = field(default_factory=list)
    removed_rows: list[str] = field(default_factory=list)
    removed_temp_files: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_young: int = 0


def gc(catalog: CatalogDB, older_than_s: float = 3600.0, dry_run: bool = False) -> GcReport:
    """Remove unreferenced objects (and blob rows nothing uses) older than `older_than_s`."""
    report = GcReport()
    cutoff = time.time() - older_than_s
    referenced = catalog.blobs.referenced_digests()
    rows = {b.digest for b in catalog.blobs.list()}
    dead_rows = sorted(rows - referenced)
    if dead_rows and not dry_run:
        report.removed_rows = catalog.blobs.delete_unreferenced(dead_rows)
    elif dry_run:
        report.removed_rows = dead_rows
    keep = (rows - set(report.removed_rows)) | referenced
    for digest in catalog.objects.iter_digests():
        if digest in keep:
            continue
        path = catalog.objects.path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            report.kept_young += 1
            continue
        report.removed_objects.append(digest)
        report.freed_bytes += st.st_size
        if not dry_run:
            catalog.objects.remove(digest)
    for tmp in catalog.objects.temp_files():
        try:
            st = tmp.stat()
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            continue
        report.removed_temp_files.append(str(tmp))
        report.freed_bytes += st.st_size
        if not dry_run:
            os.unlink(tmp)
    return report


@dataclass(frozen=True)
class DoctorFinding:
    digest: str
    status: str  # "missing" | "corrupt"
    media_type: str
    size: int


def doctor(catalog: CatalogDB, on_object: Callable[[], None] | None = None) -> tuple[int, list[DoctorFinding]]:
    """Re-hash every object the catalog knows; (objects checked, problems found)."""
    findings: list[DoctorFinding] = []
    blobs = catalog.blobs.list()
    for blob in blobs:
        status = catalog.objects.verify(blob.digest)
        if status != "ok":
            findings.append(DoctorFinding(blob.digest, status, blob.media_type, blob.size))
        if on_object:
            on_object()
    return len(blobs), findings
