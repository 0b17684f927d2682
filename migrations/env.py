"""Alembic environment for the lsdb catalog.

lsdb runs migrations from code, handing a live connection in ``config.attributes``;
the ``alembic`` command line works too (``-x url=...`` or ``LSDB_DATABASE_URL``).
The version table is ``lsdb_alembic_version`` so lsdb can share a database with other tools;
SQLite uses batch mode because it cannot ALTER most things in place.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from lsdb.catalog.models import Base

VERSION_TABLE = "lsdb_alembic_version"
config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("LSDB_DATABASE_URL")
    if not url:
        raise SystemExit("pass -x url=DATABASE_URL or set LSDB_DATABASE_URL")
    engine = create_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
