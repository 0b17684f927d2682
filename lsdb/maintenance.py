"""Keeping the catalog and the store in agreement: `gc` and `doctor`.

`gc` removes store objects that no catalog row refers to (crash leftovers, objects of
deleted rows, temporary files), after a grace period so it never races an ingest that has
published its file but not yet committed its row. `doctor` re-hashes every object the
catalog refers to and reports missing or corrupt ones.
"""

from __future__ import annotations

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
    """Remove unreferenced objects (and blob rows nothing uses) older than `older_than_s`.

    Safe against concurrent ingests and results: a candidate (unreferenced in the first snapshot,
    old enough) is first moved aside to a `.gc-` name, then the references are read again and its
    age re-checked; it is restored when a row now refers to it or a writer refreshed its age
    (`ObjectStore` refreshes an object's age when a write finds it present), deleted otherwise.
    A writer that looks for the object while it is aside finds it absent and writes it again, and
    every writer confirms its objects after committing its rows (`lsdb.ingest.confirm_object`),
    so a row committed after the re-check still finds its object. A reader finds an object
    that is aside for the moment where it lies (`ObjectStore.open`).
    """
    report = GcReport()
    if dry_run:
        return _gc(catalog, older_than_s, True, report)
    catalog.db.check_writable()
    with catalog.objects.gc_lock():  # one gc at a time: a second one waits
        return _gc(catalog, older_than_s, False, report)


def _gc(catalog: CatalogDB, older_than_s: float, dry_run: bool, report: GcReport) -> GcReport:
    objects = catalog.objects
    for digest, leftover in [] if dry_run else objects.quarantined():  # a crashed gc's: decide again below
        objects.restore(digest, leftover)
    cutoff = time.time() - older_than_s
    referenced = catalog.blobs.referenced_digests()
    rows = {b.digest for b in catalog.blobs.list()}
    dead_rows = sorted(rows - referenced)
    if dead_rows and not dry_run:
        report.removed_rows = catalog.blobs.delete_unreferenced(dead_rows)
    elif dry_run:
        report.removed_rows = dead_rows
    keep = (rows - set(report.removed_rows)) | referenced
    candidates: list[tuple[str, int]] = []
    for digest in objects.iter_digests():
        if digest in keep:
            continue
        try:
            st = objects.path(digest).stat()
        except FileNotFoundError:
            continue
        if st.st_mtime >= cutoff:
            report.kept_young += 1
            continue
        candidates.append((digest, st.st_size))
    if dry_run:
        report.removed_objects = [d for d, _ in candidates]
        report.freed_bytes = sum(size for _, size in candidates)
    else:
        aside = [(d, size, where) for d, size in candidates if (where := objects.quarantine(d)) is not None]
        referenced_now = catalog.blobs.referenced_digests() | {b.digest for b in catalog.blobs.list()}
        for digest, size, path in aside:
            try:
                touched = path.stat().st_mtime >= cutoff
            except FileNotFoundError:
                continue
            if digest in referenced_now or touched:
                objects.restore(digest, path)
                report.kept_young += 1
                continue
            objects.discard(path)
            report.removed_objects.append(digest)
            report.freed_bytes += size
    for tmp in objects.temp_files():
        if dry_run:
            try:
                st = tmp.stat()
            except FileNotFoundError:
                continue
            freed: int | None = st.st_size if st.st_mtime <= cutoff else None
        else:
            freed = objects.remove_temp(tmp, cutoff)
        if freed is not None:
            report.removed_temp_files.append(str(tmp))
            report.freed_bytes += freed
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
