"""The exceptions lsdb raises on purpose.

Every error a user can cause is an `LsdbError`: the CLI prints its message as one line on
stderr and exits non-zero. Anything else is a bug and shows a traceback under `--debug`.
"""

from __future__ import annotations


class LsdbError(Exception):
    """Base class: a clear, one-line message that says what is wrong and what to do."""

    exit_code = 1


class NotFound(LsdbError):
    """A run, checkpoint, result, job or file that was asked for does not exist."""


class BadInput(LsdbError):
    """The user gave something lsdb cannot use (a file, a spec, a parameter, a URL)."""

    exit_code = 2


class SchemaOutOfDate(LsdbError):
    """The catalog's schema is not the one this lsdb expects (older or newer)."""


class JobLost(LsdbError):
    """A worker lost the lease on its job; its result must not be committed."""


class PluginError(LsdbError):
    """A plugin failed to load or registered something invalid; the message names it."""


class ReadOnlyCatalog(LsdbError):
    """A writing command on a catalog opened read-only."""


class StoreError(LsdbError):
    """The artifact store cannot be written or holds a missing or corrupt object."""
