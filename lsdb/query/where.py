"""The ``--where`` grammar: a small boolean language over run and result keys, parsed to a tree.

Grammar (keywords are case-insensitive)::

    expr       := or
    or         := and ('OR' and)*
    and        := not ('AND' not)*
    not        := 'NOT' not | atom
    atom       := '(' expr ')' | comparison
    comparison := NAME OP VALUE
                | NAME 'IN' '(' VALUE (',' VALUE)* ')'
                | NAME 'IS' ['NOT'] 'NULL'
                | NAME ('LIKE' | 'CONTAINS') STRING
    OP         := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    NAME       := a letter or '_', then letters, digits, '_', '-' and '.' (e.g. lr, param.lr, metric.acc.max)
    VALUE      := NUMBER | STRING | TRUE | FALSE | WORD
    NUMBER     := [+-] digits [. digits] [e [+-] digits]     (1, -2, 0.5, .5, 1e-3)
    STRING     := '...' or "..." (a doubled quote or a backslash escapes the quote character)
    WORD       := an unquoted word such as resnet or v1.2-beta; it is a string

This module only parses: it turns text into frozen nodes (`Compare`, `InList`, `IsNull`,
`Match`, `And`, `Or`, `Not`) and never builds SQL. The catalog's `CompareRepository` compiles the
nodes to SQLAlchemy expressions with bound parameters. Every syntax error is a `BadInput` whose
one-line message names the 1-based column where the expression went wrong; nesting deeper than
`MAX_DEPTH` is such an error too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from lsdb.errors import BadInput

Value = Union[float, str, bool]
"""A literal: a number (float), a string, or a boolean."""

OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
"""Comparison operators as written -> their canonical form."""
KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "CONTAINS", "TRUE", "FALSE"}
MAX_DEPTH = 100
"""Parentheses and NOTs nest at most this deep (a one-line error, not a RecursionError, beyond)."""

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.\-])")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_OPERATOR = re.compile(r"==|!=|<>|<=|>=|=|<|>")


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind, its value, the text it came from and its 1-based column."""

    kind: str  # NUMBER STRING WORD KEYWORD OP LPAREN RPAREN COMMA END ERROR
    value: Value | None
    text: str
    column: int


@dataclass(frozen=True)
class Literal:
    """A value in the expression, with the text the user wrote (tags compare against that text)."""

    value: Value
    text: str
    column: int

    @property
    def kind(self) -> str:
        """``"bool"``, ``"number"`` or ``"string"``."""
        if isinstance(self.value, bool):
            return "bool"
        return "number" if isinstance(self.value, float) else "string"


@dataclass(frozen=True)
class Compare:
    """``name op value``."""

    name: str
    op: str
    value: Literal
    column: int


@dataclass(frozen=True)
class InList:
    """``name IN (v1, v2, ...)``."""

    name: str
    values: tuple[Literal, ...]
    column: int


@dataclass(frozen=True)
class IsNull:
    """``name IS NULL`` (``negated``: ``IS NOT NULL``)."""

    name: str
    negated: bool
    column: int


@dataclass(frozen=True)
class Match:
    """``name LIKE 'pattern'`` (SQL wildcards % and _) or ``name CONTAINS 'text'`` (a plain substring)."""

    name: str
    kind: str  # "like" | "contains"
    pattern: str
    column: int


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    inner: Node


Node = Union[Compare, InList, IsNull, Match, And, Or, Not]


def _error(message: str) -> BadInput:
    return BadInput(f"--where: {message}")


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The string literal opening at `start` and the index after its closing quote."""
    quote, i, out = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise _error(f"unterminated string starting at column {start + 1}")


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens, ending with an ``END`` token; BadInput on a stray character."""
    tokens = _lex(text)
    if tokens[-1].kind == "ERROR":
        raise _error(str(tokens[-1].value))
    return tokens


def _lex(text: str) -> list[Token]:
    """The tokens of `text`, ending with ``END``, or with an ``ERROR`` token where lexing failed.

    The parser raises an ``ERROR`` token's message only when it reaches it, so the error
    reported is the first one in reading order (``x = 1 OR 1=1 --`` complains about ``1=1``).
    """
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if ch in "'\"":
            try:
                value, end = _read_string(text, i)
            except BadInput as exc:
                return [*tokens, Token("ERROR", str(exc).removeprefix("--where: "), "", col)]
            tokens.append(Token("STRING", value, text[i:end], col))
            i = end
            continue
        if ch in "(),":
            kind = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[ch]
            tokens.append(Token(kind, None, ch, col))
            i += 1
            continue
        if m := _OPERATOR.match(text, i):
            tokens.append(Token("OP", OPERATORS[m.group()], m.group(), col))
            i = m.end()
            continue
        if m := _NUMBER.match(text, i):
            tokens.append(Token("NUMBER", float(m.group()), m.group(), col))
            i = m.end()
            continue
        if m := _WORD.match(text, i):
            word = m.group()
            upper = word.upper()
            if upper in KEYWORDS:
                tokens.append(Token("KEYWORD", upper, word, col))
            else:
                tokens.append(Token("WORD", word, word, col))
            i = m.end()
            continue
        return [*tokens, Token("ERROR", f"unexpected character {ch!r} at column {col}", ch, col)]
    tokens.append(Token("END", None, "", len(text) + 1))
    return tokens


def _found(tok: Token) -> str:
    return "end of expression" if tok.kind == "END" else repr(tok.text)


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def nest(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested more than {MAX_DEPTH} levels deep at column {tok.column}")

    @property
    def tok(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind == "ERROR":
            raise _error(str(tok.value))
        return tok

    def take(self) -> Token:
        tok = self.tok
        if tok.kind != "END":
            self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        return self.tok.kind == "KEYWORD" and self.tok.value in words

    def parse(self) -> Node:
        node = self.or_()
        if self.tok.kind != "END":
            hint = "" if self.tok.kind == "RPAREN" else "; join conditions with AND or OR"
            raise _error(f"unexpected {_found(self.tok)} at column {self.tok.column}{hint}")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.keyword("OR"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.keyword("AND"):
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Node:
        if self.keyword("NOT"):
            self.nest(self.take())
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        if self.tok.kind == "LPAREN":
            opened = self.take()
            self.nest(opened)
            node = self.or_()
            if self.tok.kind != "RPAREN":
                raise _error(
                    f"expected ')' to close '(' from column {opened.column}, "
                    f"found {_found(self.tok)} at column {self.tok.column}"
                )
            self.take()
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        name_tok = self.tok
        if name_tok.kind != "WORD" or not _NAME.fullmatch(name_tok.text):
            raise _error(f"expected a key name at column {name_tok.column}, found {_found(name_tok)}")
        self.take()
        name, col = name_tok.text, name_tok.column
        tok = self.tok
        if tok.kind == "OP":
            self.take()
            return Compare(name, str(tok.value), self.literal(f"after '{tok.text}'"), col)
        if self.keyword("IN"):
            return InList(name, self.in_list(), col)
        if self.keyword("IS"):
            self.take()
            negated = self.keyword("NOT")
            if negated:
                self.take()
            if not self.keyword("NULL"):
                tok = self.tok
                raise _error(f"expected NULL or NOT NULL after IS at column {tok.column}, found {_found(tok)}")
            self.take()
            return IsNull(name, negated, col)
        if self.keyword("LIKE", "CONTAINS"):
            word = self.take()
            if self.tok.kind != "STRING":
                raise _error(
                    f"expected a quoted string after {word.text} at column {self.tok.column}, found {_found(self.tok)}"
                )
            return Match(name, str(word.value).lower(), str(self.take().value), col)
        raise _error(
            f"expected an operator (=, !=, <, <=, >, >=, IN, IS, LIKE, CONTAINS) after '{name}' "
            f"at column {tok.column}, found {_found(tok)}"
        )

    def literal(self, where: str) -> Literal:
        tok = self.tok
        if tok.kind in ("NUMBER", "STRING", "WORD"):
            self.take()
            return Literal(tok.value, tok.text, tok.column)  # type: ignore[arg-type]
        if self.keyword("TRUE", "FALSE"):
            self.take()
            return Literal(tok.value == "TRUE", tok.text.lower(), tok.column)
        if self.keyword("NULL"):
            raise _error(f"compare with NULL using IS NULL or IS NOT NULL (column {tok.column})")
        raise _error(f"expected a value {where} at column {tok.column}, found {_found(tok)}")

    def in_list(self) -> tuple[Literal, ...]:
        self.take()
        if self.tok.kind != "LPAREN":
            raise _error(f"expected '(' after IN at column {self.tok.column}, found {_found(self.tok)}")
        self.take()
        values = [self.literal("in the IN list")]
        while self.tok.kind == "COMMA":
            self.take()
            values.append(self.literal("after ','"))
        if self.tok.kind != "RPAREN":
            raise _error(f"expected ',' or ')' in the IN list at column {self.tok.column}, found {_found(self.tok)}")
        self.take()
        return tuple(values)


def parse_where(text: str) -> Node | None:
    """Parse a ``--where`` expression; None for an empty one, BadInput (with a column) for bad syntax."""
    tokens = _lex(text)
    if tokens[0].kind == "END":
        return None
    return _Parser(tokens).parse()


def names(node: Node) -> list[str]:
    """Every key name `node` refers to, in order of appearance (with repeats)."""
    if isinstance(node, (And, Or)):
        return [n for part in node.parts for n in names(part)]
    if isinstance(node, Not):
        return names(node.inner)
    return [node.name]
