"""The --where grammar: precedence, literals, and one-line errors that point at a column."""

from __future__ import annotations

import pytest

from lsdb.errors import BadInput
from lsdb.query.where import And, Compare, InList, IsNull, Literal, Match, Not, Or, names, parse_where, tokenize


def shape(node: object) -> object:
    """A compact, column-free view of a parse tree for assertions."""
    if isinstance(node, (And, Or)):
        return (type(node).__name__, [shape(p) for p in node.parts])
    if isinstance(node, Not):
        return ("Not", shape(node.inner))
    if isinstance(node, Compare):
        return (node.name, node.op, node.value.value)
    if isinstance(node, InList):
        return (node.name, "IN", [v.value for v in node.values])
    if isinstance(node, IsNull):
        return (node.name, "IS NOT NULL" if node.negated else "IS NULL")
    assert isinstance(node, Match)
    return (node.name, node.kind, node.pattern)


def test_and_binds_tighter_than_or() -> None:
    tree = parse_where("a = 1 OR b = 2 AND c = 3")
    assert shape(tree) == ("Or", [("a", "=", 1.0), ("And", [("b", "=", 2.0), ("c", "=", 3.0)])])


def test_parentheses_override_precedence() -> None:
    tree = parse_where("(a = 1 OR b = 2) AND c = 3")
    assert shape(tree) == ("And", [("Or", [("a", "=", 1.0), ("b", "=", 2.0)]), ("c", "=", 3.0)])


def test_not_binds_tighter_than_and_and_nests() -> None:
    assert shape(parse_where("NOT a = 1 AND b = 2")) == ("And", [("Not", ("a", "=", 1.0)), ("b", "=", 2.0)])
    assert shape(parse_where("not not a = 1")) == ("Not", ("Not", ("a", "=", 1.0)))
    assert shape(parse_where("NOT (a = 1 OR b = 2)")) == ("Not", ("Or", [("a", "=", 1.0), ("b", "=", 2.0)]))


def test_keywords_are_case_insensitive() -> None:
    tree = parse_where("a in (1, 2) and b is not null Or c like 'x%' AND d Contains 'y'")
    assert shape(tree) == (
        "Or",
        [
            ("And", [("a", "IN", [1.0, 2.0]), ("b", "IS NOT NULL")]),
            ("And", [("c", "like", "x%"), ("d", "contains", "y")]),
        ],
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-2", -2.0), ("0.5", 0.5), (".5", 0.5), ("1e-3", 1e-3), ("-1.5E+2", -150.0), ("+3", 3.0)],
)
def test_numbers(text: str, value: float) -> None:
    node = parse_where(f"lr >= {text}")
    assert isinstance(node, Compare) and node.value == Literal(value, text, 7)
    assert parse_where(f"lr>={text}") == Compare("lr", ">=", Literal(value, text, 5), 1)


@pytest.mark.parametrize(("op", "canonical"), [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"),
                                               ("<=", "<="), (">", ">"), (">=", ">=")])
def test_operators(op: str, canonical: str) -> None:
    assert shape(parse_where(f"x {op} 1")) == ("x", canonical, 1.0)


def test_strings_words_and_booleans() -> None:
    assert shape(parse_where("note = 'big batch, small lr'")) == ("note", "=", "big batch, small lr")
    assert shape(parse_where('note = "it\'s"')) == ("note", "=", "it's")
    assert shape(parse_where("note = 'it''s'")) == ("note", "=", "it's")
    assert shape(parse_where(r"note = 'a\'b'")) == ("note", "=", "a'b")
    assert shape(parse_where("arch = resnet-20")) == ("arch", "=", "resnet-20")
    assert shape(parse_where("v = 2x")) == ("v", "=", "2x")
    assert shape(parse_where("flag = TRUE OR flag = false")) == ("Or", [("flag", "=", True), ("flag", "=", False)])
    assert shape(parse_where("x IN ('a b', c, 3, true)")) == ("x", "IN", ["a b", "c", 3.0, True])


def test_dotted_names_and_dashes() -> None:
    tree = parse_where("metric.test_acc.max > 0.9 AND tag.warm-up = yes AND param.lr < 1")
    assert names(tree) == ["metric.test_acc.max", "tag.warm-up", "param.lr"]  # type: ignore[arg-type]


def test_empty_expression_is_no_filter() -> None:
    assert parse_where("") is None
    assert parse_where("   ") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr > ", "--where: expected a value after '>' at column 6, found end of expression"),
        ("test_acc > AND", "--where: expected a value after '>' at column 12, found 'AND'"),
        ("lr 0.1", "--where: expected an operator (=, !=, <, <=, >, >=, IN, IS, LIKE, CONTAINS) after 'lr' at col"),
        ("(lr > 1", "--where: expected ')' to close '(' from column 1, found end of expression at column 8"),
        ("lr > 1)", "--where: unexpected ')' at column 7"),
        ("lr > 1 lr < 2", "--where: unexpected 'lr' at column 8; join conditions with AND or OR"),
        ("lr IN 1", "--where: expected '(' after IN at column 7"),
        ("lr IN (1 2)", "--where: expected ',' or ')' in the IN list at column 10"),
        ("lr IS 1", "--where: expected NULL or NOT NULL after IS at column 7"),
        ("lr = NULL", "--where: compare with NULL using IS NULL or IS NOT NULL (column 6)"),
        ("arch LIKE res%", "--where: expected a quoted string after LIKE at column 11, found 'res'"),
        ("arch LIKE resnet", "--where: expected a quoted string after LIKE at column 11"),
        ("note = 'open", "--where: unterminated string starting at column 8"),
        ("AND x = 1", "--where: expected a key name at column 1, found 'AND'"),
        ("1 = 1", "--where: expected a key name at column 1, found '1'"),
        ("lr > 1; DROP TABLE runs", "--where: unexpected character ';' at column 7"),
        ("lr = -", "--where: unexpected character '-' at column 6"),
    ],
)
def test_syntax_errors_name_the_column(text: str, message: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_where(text)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_tokens_carry_one_based_columns() -> None:
    assert [(t.kind, t.column) for t in tokenize("a>=1")] == [("WORD", 1), ("OP", 2), ("NUMBER", 4), ("END", 5)]
