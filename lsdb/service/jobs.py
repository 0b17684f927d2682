"""`Job`: a queued analysis as a user follows it (status, progress, wait for its `Result`, cancel, retry).

`Catalog.submit` returns one. A request whose result is already stored needs no job: the
returned `Job` then has ``id is None`` and `wait` returns the stored result at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lsdb.errors import LsdbError

if TYPE_CHECKING:
    from lsdb.catalog.jobs import JobRecord
    from lsdb.service.catalog import Catalog
    from lsdb.service.results import Result

#: ``on_progress(job, fraction, message)``, called on every poll of `Job.wait`.
ProgressFn = Callable[["JobRecord", float, str], None]


class Job:
    """A handle on one job of the queue (or on a cached result that needed none)."""

    def __init__(
        self,
        catalog: Catalog,
        record: JobRecord | None,
        *,
        created: bool = False,
        tiles: int = 0,
        cached: Result | None = None,
    ) -> None:
        self._catalog = catalog
        self.record = record
        self.created = created
        self.tiles = tiles
        self.cached = cached

    @property
    def id(self) -> int | None:
        return self.record.id if self.record is not None else None

    @property
    def status(self) -> str:
        """queued, waiting (for its tiles), running, succeeded, failed or cancelled (as last read)."""
        return self.record.status if self.record is not None else "succeeded"

    def refresh(self) -> Job:
        """Re-read the job from the catalog."""
        if self.record is not None:
            self.record = self._catalog.job(self.record.id).record
        return self

    def progress(self) -> tuple[float, str]:
        """(fraction done, message) now; a fan-out parent counts its tiles."""
        if self.record is None:
            return 1.0, "cached"
        self.refresh()
        assert self.record is not None
        return self._catalog._job_progress(self.record)  # noqa: SLF001 - one service, two classes

    def wait(self, on_progress: ProgressFn | None = None, poll_s: float = 0.5,
             timeout_s: float | None = None) -> Result:
        """Block until the job ends; its `Result`, or `LsdbError` if it failed, was cancelled or timed out."""
        if self.cached is not None:
            return self.cached
        assert self.record is not None
        self.record = self._catalog._wait_for_job(self.record.id, on_progress, poll_s, timeout_s)  # noqa: SLF001
        return self.result()

    def result(self) -> Result:
        """The job's result once it succeeded; `LsdbError` naming the state otherwise."""
        if self.cached is not None:
            return self.cached
        job = self.record
        assert job is not None
        if job.status == "succeeded" and job.result_id is not None:
            return self._catalog.result(job.result_id, computed=self._catalog._computed_by(job))  # noqa: SLF001
        if job.status == "failed":
            first = (job.error_message or "").strip().splitlines()
            raise LsdbError(f"job {job.id} failed: {job.error_type}: {first[0] if first else ''}; "
                            f"see `lsdb jobs show {job.id}`")
        if job.status == "cancelled":
            raise LsdbError(f"job {job.id} was cancelled")
        raise LsdbError(f"job {job.id} is still {job.status}")

    def cancel(self) -> Job:
        if self.record is not None:
            self.record = self._catalog.cancel_job(self.record.id)
        return self

    def retry(self) -> Job:
        if self.record is not None:
            self.record = self._catalog.retry_job(self.record.id)
        return self

    def __repr__(self) -> str:
        if self.record is None:
            return f"<Job (none: result {self.cached.id if self.cached else '?'} was stored)>"
        return f"<Job {self.record.id} {self.record.analysis} {self.record.status}>"
