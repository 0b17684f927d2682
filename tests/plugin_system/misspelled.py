"""A plugin with a misspelled hook: check_pending() must reject it."""

from lsdb.hookspecs import hookimpl


@hookimpl
def register_analysis(register):  # type: ignore[no-untyped-def]  # (sic) the hook is register_analyses
    pass
