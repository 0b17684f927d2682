"""The pure half of querying the catalog across runs: the ``--where`` grammar (`parse_where`), compare
keys, the compare table's sorting and grouping, and overlaying several results' 1D curves in one figure
(`lsdb.query.overlay`).

This package never touches the database: the SQL half is the catalog's `CompareRepository`
(``catalog.compare.table(...)``), which compiles these trees to SQLAlchemy Core.
"""

from lsdb.query.table import CompareTable
from lsdb.query.where import parse_where

__all__ = ["CompareTable", "parse_where"]
