"""Specs: how a user names a model or a dataset, and the registries that resolve them.

A spec is one string on the command line and one JSON object in the catalog::

    mlp:widths=[128,128],activation=tanh     ->  {"name": "mlp", "kwargs": {...}}
    resnet:depth=20,skip=false
    tensors:path=/data/x.npz
    mypkg.nets:build_net:width=3             ->  {"name": "mypkg.nets:build_net", ...}

Grammar: ``TARGET[:KWARGS]`` where TARGET is a registered name or an import path
``module.path:factory`` and KWARGS is ``key=value`` pairs separated by commas. A value is
``true``/``false``, ``none``, an int, a float, a list ``[v1,v2]`` or, otherwise, a string.
Registered names never contain ``:`` or ``=``; a segment after the first ``:`` without ``=``
is therefore a factory name, which makes the grammar unambiguous.

`lsdb.registry.FactoryRegistry` validates a spec's keyword arguments against the factory's
signature (with `coerce_kwarg`) before calling it, so a typo gets a one-line error naming the
accepted arguments instead of a deep ``TypeError``.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from lsdb.errors import BadInput

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec: a registered name (or ``module:factory``) and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object stored in the catalog (kwargs sorted by key)."""
        return {"name": self.name, "kwargs": {k: _jsonable(self.kwargs[k]) for k in sorted(self.kwargs)}}

    def __str__(self) -> str:
        if not self.kwargs:
            return self.name
        parts = ",".join(f"{k}={_format_value(v)}" for k, v in sorted(self.kwargs.items()))
        return f"{self.name}:{parts}"


def _jsonable(value: Any) -> Any:
    """Tuples become lists so a spec's JSON compares equal after a round trip."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def parse_value(text: str) -> Any:
    """Parse one spec value: bool, none, int, float, ``[list]`` or string."""
    text = text.strip()
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("none", "null"):
        return None
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_value(v) for v in _split_top(inner, ",")] if inner else []
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def parse_kwargs(text: str, what: str = "spec") -> dict[str, Any]:
    """Parse ``k=v,k=v`` into a dict (values typed by `parse_value`)."""
    kwargs: dict[str, Any] = {}
    if not text.strip():
        return kwargs
    for item in _split_top(text, ","):
        if "=" not in item:
            raise BadInput(f"{what}: '{item}' is not key=value; write e.g. name:key=value,key2=value2")
        key, value = item.split("=", 1)
        key = key.strip()
        if not _IDENT_RE.match(key):
            raise BadInput(f"{what}: '{key}' is not a valid argument name")
        kwargs[key] = parse_value(value)
    return kwargs


def parse_spec(spec: str | dict[str, Any] | Spec, what: str = "spec") -> Spec:
    """Parse a spec string (or its JSON form, or a `Spec`) into a `Spec`."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        if "name" not in spec:
            raise BadInput(f"{what}: a JSON spec needs a 'name'")
        return Spec(str(spec["name"]), dict(spec.get("kwargs") or {}))
    text = spec.strip()
    if text.startswith("{"):
        try:
            return parse_spec(json.loads(text), what)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{what}: invalid JSON spec ({exc.msg})") from None
    if not text:
        raise BadInput(f"{what}: empty spec")
    head, sep, rest = text.partition(":")
    if sep and rest:
        nxt = rest.split(":", 1)[0]
        if "=" not in nxt and "," not in nxt and _IDENT_RE.match(nxt):
            # import path module:factory[:kwargs]
            _, _, kw = rest.partition(":")
            return Spec(f"{head}:{nxt}", parse_kwargs(kw, what))
    if not _NAME_RE.match(head) and "." not in head:
        raise BadInput(f"{what}: '{head}' is not a valid name")
    return Spec(head, parse_kwargs(rest, what) if sep else {})


def _annotation_types(annotation: Any) -> tuple[type, ...] | None:
    """The concrete types an annotation admits, or None when it cannot be checked."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, {"typing": typing, **vars(typing)}, {})  # noqa: S307 - our own annotations
        except Exception:
            return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[type] = []
        for arg in typing.get_args(annotation):
            sub = _annotation_types(arg)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    if origin is not None:
        return (origin,) if isinstance(origin, type) else None
    if annotation is None or annotation is type(None):
        return (type(None),)
    return (annotation,) if isinstance(annotation, type) else None


def coerce_kwarg(name: str, value: Any, annotation: Any, where: str) -> Any:
    """Check (and where lossless, convert) a keyword argument against its annotation."""
    allowed = _annotation_types(annotation)
    if (
        allowed is None
        or isinstance(value, allowed)
        and not (isinstance(value, bool) and bool not in allowed and (int in allowed or float in allowed))
    ):
        return value
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (tuple in allowed or list in allowed) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return [value] if list in allowed else (value,)
    if tuple in allowed and isinstance(value, list):
        return tuple(value)
    if str in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    names = "/".join(t.__name__ for t in allowed)
    raise BadInput(f"{where}: argument '{name}' must be {names}, got {value!r}")
