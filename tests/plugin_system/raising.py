"""A plugin whose registration hook raises."""

from lsdb.hookspecs import hookimpl


@hookimpl
def register_analyses(register):  # type: ignore[no-untyped-def]
    raise ValueError("boom")
