"""`catalog.compare.table(where=...)` against the catalog: typed comparisons, every operator, and injection attempts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect

from lsdb.errors import BadInput


@pytest.fixture
def zoo(shared_zoo: Any) -> Any:
    """Every test here only reads: share one zoo per backend."""
    return shared_zoo


def matched(catalog: Any, where: str, **kwargs: Any) -> list[str]:
    return [row["run"] for row in catalog.compare.table(where=where, columns="run", **kwargs).rows]


CASES = [
        ("lr > 0.05", ["a", "c", "x"]),
        ("param.lr > 0.05", ["a", "c", "x"]),
        ("lr <= 0.01", ["b", "d"]),
        ("lr = 1e-3", ["d"]),
        ("lr > -1 AND lr < 0.05", ["b", "d"]),
        ("arch = resnet", ["a", "b", "e"]),
        ("arch = 'resnet' AND lr = 0.1", ["a"]),
        ("arch = resnet OR lr < 0.005 AND opt = sgd", ["a", "b", "e"]),
        ("(arch = resnet OR lr < 0.005) AND opt = sgd", ["a"]),
        ("lr IN (0.1, 0.001)", ["a", "c", "d", "x"]),
        ("arch IN (vgg, 'mlp')", ["c", "d", "x"]),
        ("flag = true", ["e"]),
        ("flag = false", []),
        ("wd IS NOT NULL", ["a"]),
        ("lr IS NULL", ["e"]),
        ("arch LIKE 'res%'", ["a", "b", "e"]),
        ("arch LIKE 'RES%'", ["a", "b", "e"]),
        ("arch LIKE 'v_g'", ["c", "d"]),
        ("arch CONTAINS 'Sne'", ["a", "b", "e"]),
        ("opt CONTAINS '%'", []),
        ("opt CONTAINS 'DROP TABLE'", ["d"]),
        ("test_acc > 0.8", ["a", "b", "e"]),
        ("metric.test_acc.min < 0.35", ["c", "e"]),
        ("metric.loss.max >= 2.2", ["c", "d"]),
        ("metric.loss.count = 2", ["a", "b", "c", "d"]),
        ("run IN (a, c)", ["a", "c"]),
        ("name = b", ["b"]),
        ("project = other", ["x"]),
        ("model = vgg", ["c", "d"]),
        ("model IS NULL", ["e", "x"]),
        ("status = complete AND run_id <= 2", ["a", "b"]),
]


def test_where_matches(zoo: Any) -> None:
    """Every operator on every kind of key (one catalog, many expressions: fast on both backends)."""
    got = {where: sorted(matched(zoo, where)) for where, _ in CASES}
    assert got == dict(CASES)


def test_numbers_compare_numerically_not_as_text(zoo: Any) -> None:
    # As text, '0.1' > '0.05' and '0.01' < '0.05' would agree; 1e-3 vs 0.0005 would not.
    assert sorted(matched(zoo, "lr > 0.0005")) == ["a", "b", "c", "d", "x"]
    assert matched(zoo, "lr > 0.05 AND lr < 0.2", project="default") == ["a", "c"]


def test_typed_columns_stay_apart(zoo: Any) -> None:
    assert matched(zoo, "lr = '0.1'") == []  # a quoted number is a string; lr holds numbers
    assert matched(zoo, "arch > 1") == []  # arch holds strings; a number reads value_num
    with pytest.raises(BadInput, match=r"'test_acc' holds numbers; compare it with a number, not 'high' \(column 12\)"):
        zoo.compare.table(where="test_acc = 'high'")
    with pytest.raises(BadInput, match="LIKE needs a text key; 'metric.loss' holds numbers"):
        zoo.compare.table(where="metric.loss LIKE '1%'")


def test_tags_compare_as_strings(zoo: Any) -> None:
    assert sorted(matched(zoo, "tag.seed = 1")) == ["a", "c"]
    assert sorted(matched(zoo, "tag.seed = '2'")) == ["b", "d"]
    assert sorted(matched(zoo, "seed IN (1, 2)")) == ["a", "b", "c", "d"]  # a bare name found only among tags
    assert matched(zoo, "tag.note = 'big batch'") == ["c"]
    assert matched(zoo, "tag.seed = 1.0") == []  # the text '1.0' is not the tag '1'


def test_an_unknown_key_is_an_error_naming_the_known_keys(zoo: Any) -> None:
    for where in ("no_such_key = 1", "param.nosuch = 1", "NOT no_such_key = 1", "tag.nope IS NULL",
                  "metric.nosuch.max > 1", "lr = 1 OR (flag = 1 AND param.lrr = 2)"):
        with pytest.raises(BadInput, match=r"--where: unknown key '[\w.]+'.*known keys: run, .*param.lr") as err:
            matched(zoo, where)
        assert "\n" not in str(err.value)


def test_deep_nesting_is_a_one_line_error(zoo: Any) -> None:
    assert matched(zoo, "(" * 50 + "lr = 0.1" + ")" * 50) == matched(zoo, "lr = 0.1")
    for deep in ("(" * 5000 + "lr = 1" + ")" * 5000, "NOT " * 5000 + "lr = 1", "(NOT " * 3000 + "lr = 1"):
        with pytest.raises(BadInput, match="nested more than 100 levels deep") as err:
            matched(zoo, deep)
        assert "\n" not in str(err.value)


def test_a_key_missing_from_some_rows_never_matches_and_not_inverts_that(zoo: Any) -> None:
    assert sorted(matched(zoo, "lr != 0.1")) == ["b", "d"]
    assert sorted(matched(zoo, "NOT lr = 0.1")) == ["b", "d", "e"]
    assert sorted(matched(zoo, "NOT (lr = 0.1 AND arch = vgg)")) == ["a", "b", "d", "e", "x"]


def test_a_key_used_twice_is_joined_once(zoo: Any) -> None:
    from lsdb.catalog.compare import _Query
    from lsdb.query.keys import Key
    from lsdb.query.where import parse_where

    query = _Query(None)
    node = parse_where("lr > 0.01 AND lr < 1 OR param.lr = 0.001 OR tag.seed = 1")
    keys = {"lr": Key("param", "lr"), "param.lr": Key("param", "lr"), "tag.seed": Key("tag", "seed")}
    query.where.append(query.compile(node, keys))  # type: ignore[arg-type]
    assert sorted(query.joins) == [("param", "lr"), ("tag", "seed")]
    assert str(query.select()).count("LEFT OUTER JOIN") == 2


INJECTIONS = {
    "opt = '1; DROP TABLE runs; --'": [],
    "lr = '1; DROP TABLE runs; --'": [],
    "opt = 'x'' OR ''1''=''1'": [],
    "opt = 'x\\' OR 1=1 --'": [],
    "name = \"b\" OR name = \"'; DELETE FROM runs; --\"": ["b"],
    "arch LIKE '%'' OR 1=1 --'": [],
    "tag.seed IN ('1'') OR (1=1', 2)": ["b", "d"],
}


def test_injection_attempts_are_just_strings(zoo: Any) -> None:
    got = {where: sorted(matched(zoo, where)) for where in INJECTIONS}
    assert got == INJECTIONS
    assert len(zoo.compare.table().rows) == 6


def test_injection_attempts_are_syntax_errors(zoo: Any) -> None:
    bad = {
        "name = 'x' OR 1=1 --": "expected a key name at column 15, found '1'",
        "lr > 0) OR (1=1": "unexpected ')' at column 7",
        "lr > 0; DROP TABLE runs": "unexpected character ';' at column 7",
        "lr = 1 UNION SELECT * FROM runs": "unexpected 'UNION' at column 8",
        "lr = 0.1 -- comment": "unexpected character '-' at column 10",
        "\"lr\" = 1": "expected a key name at column 1, found '\"lr\"'",
        "param.x'-- = 1": "unterminated string starting at column 8",
    }
    for where, message in bad.items():
        with pytest.raises(BadInput) as err:
            zoo.compare.table(where=where)
        assert str(err.value).startswith(f"--where: {message}"), where
    assert len(zoo.compare.table().rows) == 6


def test_tables_survive_and_values_are_bound_parameters(zoo: Any) -> None:
    from lsdb.catalog.compare import _Query
    from lsdb.query.keys import Key
    from lsdb.query.where import parse_where

    query = _Query(None)
    node = parse_where("opt = 'x; DROP TABLE runs; --' OR param.weird = 1")
    query.where.append(query.compile(node, {"opt": Key("param", "opt"), "param.weird": Key("param", "weird")}))  # type: ignore[arg-type]
    sql = str(query.select())
    assert "DROP" not in sql and "weird" not in sql and "opt" not in sql
    for where in INJECTIONS:
        zoo.compare.table(where=where)
    tables = set(inspect(zoo.db.engine).get_table_names())
    assert {"runs", "run_params", "run_tags", "metric_summaries", "results"} <= tables
    assert sorted(r["run"] for r in zoo.compare.table(project="default").rows) == ["a", "b", "c", "d", "e"]


def test_quotes_inside_strings_match_exactly(zoo: Any) -> None:
    assert matched(zoo, "opt = 'it''s 1; DROP TABLE runs; --'") == ["d"]
    assert matched(zoo, "opt = \"it's 1; DROP TABLE runs; --\"") == ["d"]
    assert matched(zoo, "opt LIKE 'it''s%'") == ["d"]


def test_result_keys_need_analysis(zoo: Any) -> None:
    with pytest.raises(BadInput, match="'scalar.sharpness' is a result key; pass --analysis"):
        zoo.compare.table(where="scalar.sharpness > 1")
