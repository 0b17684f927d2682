"""Querying the catalog across runs: `compare` (the service behind `lsdb compare`), its ``--where``
grammar (`parse_where`), and overlaying several results' 1D curves in one figure (`lsdb.query.overlay`).

Importing this package does not touch the database; `compare` opens a read connection per call.
"""

from lsdb.query.compare import compare
from lsdb.query.table import CompareTable
from lsdb.query.where import parse_where

__all__ = ["CompareTable", "compare", "parse_where"]
