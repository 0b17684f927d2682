"""`CompareTable` and what happens to its rows after they leave the database: sorting and grouping.

Both run in Python on fetched rows: tables of runs and results are small (thousands of rows),
and doing it here gives the same null ordering and the same statistics on SQLite and
PostgreSQL. Sorting puts missing values last in either direction; numbers sort before
strings. Grouping aggregates every numeric column with the requested statistics
(``std`` is the sample standard deviation, ddof=1, and None below two values).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lsdb.errors import BadInput

AGGREGATES: dict[str, Callable[[list[float]], float | None]] = {
    "mean": lambda xs: statistics.fmean(xs) if xs else None,
    "std": lambda xs: statistics.stdev(xs) if len(xs) > 1 else None,
    "count": lambda xs: len(xs),
    "min": lambda xs: min(xs) if xs else None,
    "max": lambda xs: max(xs) if xs else None,
    "median": lambda xs: statistics.median(xs) if xs else None,
}
"""Aggregates `--agg` accepts, over a column's non-missing values in a group."""
DEFAULT_AGG = ("mean", "std", "count")
ROWS = "rows"
"""Column of a grouped table holding how many rows fell in each group."""
NOT_AGGREGATED = ("run_id", "result_id")
"""Numeric columns that are identifiers, not measurements."""


@dataclass(frozen=True)
class CompareTable:
    """What `compare` returns: column headers in display order and one dict per row.

    ``to_records()`` gives plain dicts (one per row, every column present); ``to_pandas()`` a
    DataFrame when pandas is installed (pandas is optional: lsdb never needs it).
    """

    columns: list[str]
    rows: list[dict[str, Any]]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row with exactly the table's columns, in order."""
        return [{c: row.get(c) for c in self.columns} for row in self.rows]

    def to_pandas(self) -> Any:
        """A `pandas.DataFrame` of `to_records()`; `BadInput` naming the install command without pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise BadInput("to_pandas needs pandas: pip install pandas (or use .to_records())") from None
        return pd.DataFrame.from_records(self.to_records(), columns=self.columns)

    def column(self, name: str) -> list[Any]:
        """The values of one column, row by row; `BadInput` naming the columns otherwise."""
        if name not in self.columns:
            raise BadInput(f"no column '{name}'; columns: {', '.join(self.columns)}")
        return [row.get(name) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_records())

    def _repr_html_(self) -> str:
        """A notebook's view: an HTML table (values escaped)."""
        from html import escape

        head = "".join(f"<th>{escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """Comma-separated text (or a list of such texts) as a list of stripped, non-empty items."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_sort(value: str | Sequence[str] | None) -> list[tuple[str, bool]]:
    """``key``, ``key:asc``, ``key:desc`` or ``-key`` items as (key, descending) pairs."""
    out = []
    for item in split_list(value):
        desc = False
        if item.startswith("-"):
            item, desc = item[1:].strip(), True
        else:
            base, colon, direction = item.rpartition(":")
            if colon and direction.lower() in ("asc", "desc"):
                item, desc = base.strip(), direction.lower() == "desc"
        if not item:
            raise BadInput("--sort: expected a key name before ':desc' or after '-'")
        out.append((item, desc))
    return out


def parse_agg(value: str | Sequence[str] | None) -> list[str]:
    """The requested aggregates (default mean,std,count); BadInput naming the valid ones otherwise."""
    aggs = split_list(value) or list(DEFAULT_AGG)
    for agg in aggs:
        if agg.lower() not in AGGREGATES:
            raise BadInput(f"--agg: unknown aggregate '{agg}'; choose from {', '.join(AGGREGATES)}")
    return list(dict.fromkeys(a.lower() for a in aggs))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _order(value: Any) -> tuple[int, Any]:
    """Numbers (and booleans) before strings; NaN after the other numbers."""
    if isinstance(value, (int, float)):
        return (1, 0.0) if math.isnan(value) else (0, float(value))
    return (2, str(value))


def sort_rows(rows: list[Any], specs: Sequence[tuple[Hashable, bool]], get: Callable[[Any, Hashable], Any]) -> None:
    """Sort `rows` in place by several keys (first is most significant), missing values last.

    `get(row, key)` reads a value; each spec is (key, descending). Successive stable sorts from
    the least significant key keep earlier keys' order among ties.
    """
    for key, desc in reversed(specs):
        present = [r for r in rows if get(r, key) is not None]
        missing = [r for r in rows if get(r, key) is None]
        present.sort(key=lambda r: _order(get(r, key)), reverse=desc)
        rows[:] = present + missing


def numeric_columns(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Columns whose present values are all numbers (and that hold at least one)."""
    rows = list(rows)
    out = []
    for col in columns:
        values = [r.get(col) for r in rows if r.get(col) is not None]
        if values and all(_is_number(v) for v in values) and col not in NOT_AGGREGATED:
            out.append(col)
    return out


def group_rows(rows: list[dict[str, Any]], columns: Sequence[str], by: str, aggs: Sequence[str]) -> CompareTable:
    """One row per distinct value of column `by`: its row count and `aggs` of every numeric column.

    Aggregate columns are named ``<column>.<aggregate>`` (e.g. ``test_acc.mean``). Rows that lack
    `by` form their own group (shown last, with an empty key).
    """
    numeric = [c for c in numeric_columns(rows, columns) if c != by]
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get(by), []).append(row)
    out_cols = [by, ROWS] + [f"{c}.{a}" for c in numeric for a in aggs]
    out = []
    for value, members in groups.items():
        summary: dict[str, Any] = {by: value, ROWS: len(members)}
        for col in numeric:
            xs = [float(r[col]) for r in members if r.get(col) is not None]
            for agg in aggs:
                summary[f"{col}.{agg}"] = AGGREGATES[agg](xs)
        out.append(summary)
    sort_rows(out, [(by, False)], lambda r, k: r.get(k))
    return CompareTable(out_cols, out)


def sort_table(table: CompareTable, specs: Sequence[tuple[str, bool]]) -> None:
    """Sort a (grouped) table by its own column headers; BadInput for a header it lacks."""
    for name, _ in specs:
        if name not in table.columns:
            raise BadInput(f"--sort: '{name}' is not a column here; choose from {', '.join(table.columns)}")
    sort_rows(table.rows, specs, lambda r, k: r.get(k))
