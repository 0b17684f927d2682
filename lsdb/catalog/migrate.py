"""Running Alembic from code: create a new catalog at head, upgrade, refuse a stale one.

The migration scripts live in the top-level ``migrations/`` folder of a checkout and are
shipped inside the wheel as ``lsdb._migrations``. Creation and upgrades run under a lock
(a file lock beside a SQLite catalog, an advisory lock on PostgreSQL) so two processes that
open a new catalog at the same moment do not race.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

from lsdb.catalog.engine import VERSION_TABLE, describe_connect_error, mark_catalog
from lsdb.config import sqlite_path
from lsdb.errors import BadInput, LsdbError, SchemaOutOfDate

logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise in worker logs
_PG_LOCK_KEY = 0x15DB_0001


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/``: the checkout's, else the wheel's."""
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "env.py").exists():
        return checkout
    spec = importlib.util.find_spec("lsdb._migrations")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaOutOfDate("lsdb is installed without its migrations; reinstall lsdb")
    return Path(next(iter(spec.submodule_search_locations)))


if TYPE_CHECKING:
    from alembic.config import Config


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    loc = script_location()
    cfg.set_main_option("script_location", str(loc))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(loc / "versions"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The catalog's revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            rev = ctx.get_current_revision()
            conn.rollback()
    except OperationalError as exc:
        raise LsdbError(describe_connect_error(engine.url.render_as_string(hide_password=True), exc)) from None
    return rev


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Serialize schema changes across processes."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if engine.dialect.name == "sqlite" and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    else:
        yield


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the catalog to `revision`; returns (before, after)."""
    from alembic import command

    from lsdb.catalog.engine import is_read_only

    if is_read_only(engine):
        raise LsdbError("the catalog is read-only (its file or folder cannot be written); it cannot be upgraded here")
    with schema_lock(engine):
        before = current_revision(engine)
        if before is not None and before not in known_revisions():
            raise SchemaOutOfDate(_newer_message(before))
        with engine.begin() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            mark_catalog(conn)
        return before, current_revision(engine) or ""


def _newer_message(rev: str) -> str:
    return f"the catalog is at schema revision {rev}, made by a newer lsdb; upgrade lsdb (pip install -U lsdb)"


def _head_by_file_name() -> str | None:
    """Head revision from the file names alone (revisions are named ``NNNN_slug.py`` with id
    ``NNNN``): lets the common case, an up-to-date catalog, skip importing Alembic."""
    names = sorted(p.name.split("_", 1)[0] for p in (script_location() / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1] if names else None


def _fast_revision(engine: Engine) -> str | None:
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            rev = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()
            conn.rollback()
            return rev
    except Exception:  # noqa: BLE001 - no table yet, or no server: the slow path reports it
        return None


def ensure_current(engine: Engine) -> None:
    """Create an empty catalog at head; refuse one that is behind or ahead of this lsdb."""
    fast_head = _head_by_file_name()
    if fast_head is not None and _fast_revision(engine) == fast_head:
        return
    head = head_revision()
    rev = current_revision(engine)
    if rev == head:
        return
    from lsdb.catalog.engine import is_read_only

    if is_read_only(engine):
        raise SchemaOutOfDate(f"the read-only catalog is at schema revision {rev or 'none'}, this lsdb needs {head}; "
                              "ask its owner to run `lsdb db upgrade`")
    if rev is None:
        with schema_lock(engine):
            rev = current_revision(engine)  # another process may have created it meanwhile
            if rev is None:
                if inspect(engine).has_table("runs"):
                    raise SchemaOutOfDate(
                        "the database has lsdb tables but no lsdb_alembic_version; it was not made by lsdb"
                    )
                others = inspect(engine).get_table_names()
                if others:
                    shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
                    raise BadInput(f"the database at {engine.url.render_as_string(hide_password=True)} holds "
                                   f"another application's tables ({shown}), not an lsdb catalog; lsdb leaves "
                                   "it untouched: use an empty database")
                with engine.begin() as conn:
                    cfg = _config()
                    cfg.attributes["connection"] = conn
                    from alembic import command

                    command.upgrade(cfg, "head")
                    mark_catalog(conn)
                return
    if rev == head:
        return
    if rev not in known_revisions():
        raise SchemaOutOfDate(_newer_message(rev))
    raise SchemaOutOfDate(f"the catalog's schema is at revision {rev}, this lsdb needs {head}; run `lsdb db upgrade`")
