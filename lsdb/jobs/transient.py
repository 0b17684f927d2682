"""Transient database errors (a dropped connection, a restart, a lock timeout) and retrying them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """A database error that a reconnect may cure: a dropped connection, a restart, a lock timeout."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    seen: BaseException | None = exc
    for _ in range(5):  # the catalog re-raises connection errors as LsdbError "from None": look at the context
        if seen is None:
            return False
        if isinstance(seen, (OperationalError, InterfaceError)):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_transient(fn: Callable[[], T], attempts: int = 8, first_delay_s: float = 0.1,
                    on_retry: Callable[[BaseException], None] | None = None) -> T:
    """Call `fn`, retrying transient database errors with exponential backoff (about 25 s in all)."""
    delay = first_delay_s
    for i in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if i == attempts - 1 or not is_transient(exc):
                raise
            if on_retry is not None:
                on_retry(exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")
