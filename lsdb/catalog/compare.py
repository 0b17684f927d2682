"""`CompareRepository.table`: runs (or one analysis' results) with chosen columns, filtered, sorted, grouped.

The ``--where`` tree from `lsdb.query.where` is compiled here to SQLAlchemy Core: each key it
names becomes one LEFT JOIN on its table (``run_params``, ``run_tags``, ``metric_summaries``,
``result_scalars``, ``result_params``) with the key as a bound parameter, reused when the key
appears again; literals are bound parameters too. No SQL text is ever assembled from user input.

Typed comparisons: parameters keep numbers (``value_num``) and strings (``value_str``) apart, and
a literal is compared with the column of its own type. ``lr > 0.05`` reads ``value_num``;
``arch = resnet`` reads ``value_str``; ``lr = '0.1'`` (a quoted number is a string) matches no
numeric parameter. Booleans compare as 1/0. Tags and the fixed text fields are strings: a
number is compared with the text the user wrote (``tag.seed = 1`` matches the tag ``"1"``;
``<``/``>`` on them are string comparisons). Metrics, scalars and ids are numbers: a string
literal there is a BadInput. ``LIKE`` (wildcards ``%`` and ``_``) and ``CONTAINS`` are
case-insensitive on both backends. A condition on a key the row lacks is false, so
``NOT lr = 0.1`` matches runs without ``lr`` while ``lr != 0.1`` does not (two-valued logic).

Rows: one per run; with ``analysis``, one per result of that analysis, attached to the run of
its first input checkpoint: the first position of the first input slot the analysis declares (by
role name when the analysis is not installed). Column values are fetched in a
few bulk queries after filtering; sorting and grouping happen in Python (`lsdb.query.table`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, false, not_, null, or_, select

from lsdb.catalog import models as m
from lsdb.catalog.database import Database
from lsdb.errors import BadInput, NotFound
from lsdb.query.keys import Key, check_known, label, parse_key
from lsdb.query.table import CompareTable, group_rows, parse_agg, parse_sort, sort_rows, sort_table, split_list
from lsdb.query.where import And, Compare, InList, IsNull, Literal, Match, Node, Not, Or, names, parse_where

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_CHUNK = 500  # ids per IN list: far below every backend's bound-parameter limit
_KEY_TABLES = {
    "param": (m.RunParamRow.__table__, "run_id"),
    "tag": (m.RunTagRow.__table__, "run_id"),
    "metric": (m.MetricSummaryRow.__table__, "run_id"),
    "scalar": (m.ResultScalarRow.__table__, "result_id"),
    "rparam": (m.ResultParamRow.__table__, "result_id"),
}


class CompareRepository:
    """`lsdb compare`'s table, read in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def table(
        self,
        runs: Sequence[str | int] | None = None,
        where: str | None = None,
        analysis: str | None = None,
        columns: str | Sequence[str] | None = None,
        sort: str | Sequence[str] | None = None,
        group_by: str | None = None,
        agg: str | Sequence[str] | None = None,
        project: str | None = None,
        slots: Sequence[str] = (),
    ) -> CompareTable:
        """Runs (or, with `analysis`, that analysis' results) as a table; see the module docstring.

        `slots` are the analysis' input roles in the order its spec declares them (the caller
        knows the installed analyses; the catalog does not): a result's row belongs to the run of
        the first input of the first slot. Without them, roles are taken in name order.

        `runs` restricts to runs by name (or id); `columns`, `sort` and `agg` take lists or
        comma-separated text (``"lr,test_acc"``, ``"-test_acc,lr"``, ``"mean,std"``). Without
        `columns`: run, project (+ result_id, analysis), every parameter, every metric's last value
        (+ every scalar). `group_by` returns one row per value of that key, aggregating every
        numeric column with `agg`; `sort` then refers to the grouped table's headers.
        """
        node = parse_where(where) if where else None  # syntax errors before touching the database
        sort_specs = parse_sort(sort)
        if agg and not group_by:
            raise BadInput("--agg needs --group-by")
        aggs = parse_agg(agg) if group_by else []
        with_results = analysis is not None
        with self.db.read() as conn:
            known = _known_keys(conn, analysis, project)
            resolve = {text: parse_key(text, known, with_results) for text in (names(node) if node else [])}
            for text, key in resolve.items():
                check_known(key, text, known)
            shown = [(text, parse_key(text, known, with_results)) for text in split_list(columns)]
            hidden = [parse_key(text, known, with_results) for text, _ in sort_specs] if not group_by else []
            group_key = parse_key(group_by, known, with_results) if group_by else None
            query = _Query(analysis, _input_roles(conn, analysis, slots) if analysis is not None else ())
            if runs:
                query.where.append(_run_filter(conn, runs, project))
            if project is not None:
                query.where.append(query.runs.c.project == project)
            if node is not None:
                query.where.append(query.compile(node, resolve))
            base = conn.execute(query.select()).all()
            extra = {k for _, k in shown} | set(hidden) | ({group_key} if group_key else set())
            values = _fetch(conn, base, extra, defaults=not shown)
        rows = [_fixed(r, with_results) | values.get((r.run_id, r.result_id), {}) for r in base]
        if not shown:
            shown = [(label(k, known), k) for k in _default_keys(rows, with_results)]
        sort_rows(rows, [(Key("fixed", "project"), False), (Key("fixed", "run"), False)], dict.get)
        if not group_by:
            sort_rows(rows, [(k, desc) for k, (_, desc) in zip(hidden, sort_specs, strict=True)], dict.get)
        headers = list(dict.fromkeys(text for text, _ in shown))
        table = CompareTable(headers, [{text: row.get(key) for text, key in shown} for row in rows])
        if group_by and group_key is not None:
            for row, labelled in zip(rows, table.rows, strict=True):
                labelled[group_by] = row.get(group_key)
            table = group_rows(table.rows, headers, group_by, aggs)
            sort_table(table, sort_specs)
        return table


class _Query:
    """The FROM clause (runs, or results joined to their first input's run) and the joins keys add."""

    def __init__(self, analysis: str | None, input_roles: Sequence[str] = ()) -> None:
        self.runs = m.RunRow.__table__
        self.results = m.ResultRow.__table__ if analysis is not None else None
        self.where: list[ColumnElement[bool]] = []
        self.joins: dict[tuple[str, str], Any] = {}
        if self.results is None:
            self.from_: Any = self.runs
            return
        ri, ck = m.ResultInputRow.__table__, m.CheckpointRow.__table__
        order: list[Any] = [ri.c.role, ri.c.position]
        if input_roles:
            slot = case({role: i for i, role in enumerate(input_roles)}, value=ri.c.role, else_=len(input_roles))
            order.insert(0, slot)
        first_run = (
            select(ck.c.run_id)
            .select_from(ri.join(ck, ck.c.id == ri.c.checkpoint_id))
            .where(ri.c.result_id == self.results.c.id)
            .order_by(*order)
            .limit(1)
            .correlate(self.results)
            .scalar_subquery()
        )
        self.from_ = self.results.outerjoin(self.runs, self.runs.c.id == first_run)
        self.where.append(self.results.c.analysis == analysis)

    def select(self) -> Any:
        """The filtered rows' identities and fixed fields (results' columns are NULL for runs)."""
        r, res = self.runs, self.results
        cols = [r.c.id.label("run_id"), r.c.project, r.c.name, r.c.status, r.c.model_spec, r.c.dataset_spec]
        if res is None:
            cols += [null().label("result_id"), null().label("result_analysis")]
            order = r.c.id
        else:
            cols += [res.c.id.label("result_id"), res.c.analysis.label("result_analysis")]
            order = res.c.id
        return select(*cols).select_from(self.from_).where(*self.where).order_by(order)

    def _joined(self, key: Key) -> Any:
        """The aliased key table for `key`, LEFT JOINed once and reused."""
        ident = (key.namespace, key.name)
        if ident not in self.joins:
            table, fk = _KEY_TABLES[key.namespace]
            alias = table.alias(f"k{len(self.joins)}")
            owner = self.runs.c.id if fk == "run_id" else self.results.c.id  # type: ignore[union-attr]
            self.from_ = self.from_.outerjoin(alias, and_(alias.c[fk] == owner, alias.c.key == key.name))
            self.joins[ident] = alias
        return self.joins[ident]

    def columns(self, key: Key) -> tuple[Any, Any]:
        """(numeric column, string column) holding `key`'s value; either may be None."""
        r, res = self.runs, self.results
        if key.namespace == "fixed":
            fixed: dict[str, tuple[Any, Any]] = {
                "run": (None, r.c.name), "project": (None, r.c.project), "status": (None, r.c.status),
                "run_id": (r.c.id, None), "model": (None, r.c.model_spec["name"].as_string()),
                "dataset": (None, r.c.dataset_spec["name"].as_string()),
            }
            if res is not None:
                fixed |= {"result_id": (res.c.id, None), "analysis": (None, res.c.analysis)}
            return fixed[key.name]
        t = self._joined(key)
        if key.namespace in ("param", "rparam"):
            return t.c.value_num, t.c.value_str
        if key.namespace == "tag":
            return None, t.c.value
        if key.namespace == "metric":
            return t.c[key.stat], None
        return t.c.value, None

    def compile(self, node: Node, keys: dict[str, Key]) -> ColumnElement[bool]:
        """A two-valued SQL condition for `node`: every comparison on a missing value is false."""
        if isinstance(node, And):
            return and_(*(self.compile(p, keys) for p in node.parts))
        if isinstance(node, Or):
            return or_(*(self.compile(p, keys) for p in node.parts))
        if isinstance(node, Not):
            return not_(self.compile(node.inner, keys))
        num, text = self.columns(keys[node.name])
        if isinstance(node, IsNull):
            missing = and_(*(c.is_(None) for c in (num, text) if c is not None))
            return not_(missing) if node.negated else missing
        if isinstance(node, Match):
            if text is None:
                raise BadInput(f"--where: {node.kind.upper()} needs a text key; '{node.name}' holds numbers")
            cond = text.ilike(node.pattern) if node.kind == "like" else text.icontains(node.pattern, autoescape=True)
            return and_(text.is_not(None), cond)
        if isinstance(node, Compare):
            col, value = _typed(node.name, num, text, node.value)
            return and_(col.is_not(None), _OPS[node.op](col, value))
        assert isinstance(node, InList)
        by_column: dict[int, tuple[Any, list[Any]]] = {}
        for lit in node.values:
            col, value = _typed(node.name, num, text, lit)
            by_column.setdefault(id(col), (col, []))[1].append(value)
        return or_(false(), *(and_(col.is_not(None), col.in_(vals)) for col, vals in by_column.values()))


def _typed(name: str, num: Any, text: Any, lit: Literal) -> tuple[Any, Any]:
    """The column a literal is compared with, and the literal's value for it."""
    if lit.kind == "string":
        if text is None:
            raise BadInput(f"--where: '{name}' holds numbers; compare it with a number, not {lit.text} "
                           f"(column {lit.column})")
        return text, lit.value
    if num is not None:
        return num, float(lit.value)
    return text, lit.text  # a number or boolean against a text field: compare the text as written


def _input_roles(conn: Connection, analysis: str, slots: Sequence[str]) -> list[str]:
    """The analysis' input roles in slot order, when its results use several roles (else empty).

    The catalog stores each input's role and position within the role, not the slots' order;
    the analysis' spec knows it (`slots`, from the caller). Without it, roles sort by name.
    """
    ri, res = m.ResultInputRow.__table__, m.ResultRow.__table__
    q = select(ri.c.role).distinct().join(res, res.c.id == ri.c.result_id).where(res.c.analysis == analysis)
    if len(conn.execute(q.limit(2)).all()) < 2:
        return []
    return list(slots)


def _run_filter(conn: Connection, refs: Sequence[str | int], project: str | None) -> ColumnElement[bool]:
    """Runs named in `refs` (names, or ids as digits); NotFound for one that does not exist."""
    r = m.RunRow.__table__
    names_ = [str(x) for x in refs]
    ids = [int(x) for x in names_ if x.isdigit()]
    cond = or_(r.c.name.in_(names_), r.c.id.in_(ids))
    q = select(r.c.id, r.c.name).where(cond)
    if project is not None:
        q = q.where(r.c.project == project)
    found = conn.execute(q).all()
    seen = {row.name for row in found} | {str(row.id) for row in found}
    for ref in names_:
        if ref not in seen:
            where = f" in project '{project}'" if project else ""
            raise NotFound(f"run '{ref}' not found{where}; see `lsdb runs`")
    return r.c.id.in_([row.id for row in found])


def _known_keys(conn: Connection, analysis: str | None, project: str | None) -> dict[str, set[str]]:
    """The key names each namespace holds (scoped to `project` and `analysis`), to resolve bare names."""
    known: dict[str, set[str]] = {}
    runs, results = m.RunRow.__table__, m.ResultRow.__table__
    for ns, (table, fk) in _KEY_TABLES.items():
        q = select(table.c.key).distinct()
        if fk == "run_id" and project is not None:
            q = q.join(runs, runs.c.id == table.c.run_id).where(runs.c.project == project)
        if fk == "result_id":
            if analysis is None:
                known[ns] = set()
                continue
            q = q.join(results, results.c.id == table.c.result_id).where(results.c.analysis == analysis)
        known[ns] = set(conn.execute(q).scalars())
    return known


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _fetch(conn: Connection, base: Sequence[Any], keys: set[Key], defaults: bool) -> dict[tuple[Any, Any], dict]:
    """Values of `keys` (plus, with `defaults`, every param, metric and scalar) per (run id, result id)."""
    run_ids = [r.run_id for r in base if r.run_id is not None]
    result_ids = [r.result_id for r in base if r.result_id is not None]
    per_owner: dict[str, dict[Any, dict[Key, Any]]] = {"run_id": {}, "result_id": {}}
    for ns, (table, fk) in _KEY_TABLES.items():
        wanted = {k.name for k in keys if k.namespace == ns}
        every = defaults and ns in ("param", "metric", "scalar")
        owners = run_ids if fk == "run_id" else result_ids
        if not (wanted or every) or not owners:
            continue
        stats = {k.stat for k in keys if k.namespace == ns} | ({"last"} if every else set())
        for chunk in _chunks(owners):
            q = select(table).where(table.c[fk].in_(chunk))
            if not every:
                q = q.where(table.c.key.in_(sorted(wanted)))
            for row in conn.execute(q):
                slot = per_owner[fk].setdefault(row._mapping[fk], {})
                if ns == "metric":
                    for stat in stats:
                        slot[Key(ns, row.key, stat)] = row._mapping[stat]
                elif ns == "tag":
                    slot[Key(ns, row.key)] = row.value
                elif ns == "scalar":
                    slot[Key(ns, row.key)] = row.value
                else:
                    slot[Key(ns, row.key)] = _param_value(row, ns == "rparam")
    out: dict[tuple[Any, Any], dict] = {}
    for r in base:
        merged = dict(per_owner["run_id"].get(r.run_id, {}))
        if r.result_id is not None:
            merged |= per_owner["result_id"].get(r.result_id, {})
        out[(r.run_id, r.result_id)] = merged
    return out


def _param_value(row: Any, with_json: bool) -> Any:
    """A typed parameter's value: booleans are stored as 1/0 plus the text true/false."""
    if row.value_num is not None and row.value_str in ("true", "false"):
        return row.value_str == "true"
    if row.value_num is not None:
        return row.value_num
    if row.value_str is None and with_json:
        return row.value_json
    return row.value_str


def _spec(spec: dict[str, Any] | None) -> str | None:
    if not spec:
        return None
    from lsdb.specs import parse_spec

    return str(parse_spec(spec))


def _fixed(row: Any, with_results: bool) -> dict[Key, Any]:
    values = {
        "run": row.name, "project": row.project, "run_id": row.run_id, "status": row.status,
        "model": _spec(row.model_spec), "dataset": _spec(row.dataset_spec),
    }
    if with_results:
        values |= {"result_id": row.result_id, "analysis": row.result_analysis}
    return {Key("fixed", k): v for k, v in values.items()}


def _default_keys(rows: Sequence[dict[Key, Any]], with_results: bool) -> list[Key]:
    present = {k for row in rows for k in row}
    fixed = [Key("fixed", f) for f in ("run", "project", *(("result_id", "analysis") if with_results else ()))]

    def of(ns: str) -> list[Key]:
        return sorted((k for k in present if k.namespace == ns and k.stat == "last"), key=lambda k: k.name)

    return fixed + of("param") + of("metric") + (of("scalar") if with_results else [])
