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

A `Registry` maps names to factories and validates keyword arguments against the
factory's signature before calling it, so a typo gets a one-line error naming the
accepted arguments instead of a deep ``TypeError``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from lsdb.errors import BadInput, PluginError

T = TypeVar("T")

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

    @property
    def is_import_path(self) -> bool:
        return ":" in self.name


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


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with where it came from."""

    name: str
    factory: Callable[..., T]
    doc: str
    plugin: str


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


class Registry(Generic[T]):
    """Named factories of one kind (models, datasets, checkpoint formats, ...).

    `register` is the callback handed to plugins' registration hooks; it rejects
    duplicate names and non-callables with a `PluginError` that names the plugin.
    """

    def __init__(self, kind: str, fixed_args: int = 0) -> None:
        self.kind = kind
        self._fixed_args = fixed_args  # positional arguments the caller supplies
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, factory: Callable[..., T], *, doc: str | None = None, plugin: str = "lsdb") -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PluginError(f"plugin {plugin}: invalid {self.kind} name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin {plugin}: {self.kind} '{name}' is not callable")
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(f"plugin {plugin}: {self.kind} '{name}' is already registered by {other}")
        text = doc if doc is not None else (inspect.getdoc(factory) or "").split("\n\n")[0]
        self._entries[name] = Entry(name, factory, text, plugin)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def factory(self, name: str) -> Callable[..., T]:
        """The factory for a registered name or an import path ``module:factory``."""
        if name in self._entries:
            return self._entries[name].factory
        if ":" in name:
            module_name, _, attr = name.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise BadInput(f"{self.kind} '{name}': cannot import module '{module_name}' ({exc})") from None
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise BadInput(f"{self.kind} '{name}': module '{module_name}' has no callable '{attr}'")
            return fn
        avail = ", ".join(self.names()) or "none"
        raise BadInput(f"unknown {self.kind} '{name}'; available: {avail} (or module.path:factory)")

    def accepted_kwargs(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword arguments a factory accepts (after its fixed positional ones)."""
        sig = inspect.signature(self.factory(name))
        params = list(sig.parameters.values())[self._fixed_args :]
        return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def validate(self, spec: Spec | str | dict[str, Any]) -> Spec:
        """Parse the spec and check its kwargs' names and types; return the typed spec."""
        spec = parse_spec(spec, self.kind)
        fn = self.factory(spec.name)
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())[self._fixed_args :]
        accepted = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        out: dict[str, Any] = {}
        for key, value in spec.kwargs.items():
            if key not in accepted:
                if takes_any:
                    out[key] = value
                    continue
                names = ", ".join(accepted) or "none"
                raise BadInput(f"{self.kind} '{spec.name}': unknown argument '{key}'; accepted: {names}")
            out[key] = coerce_kwarg(key, value, hints.get(key, accepted[key].annotation), f"{self.kind} '{spec.name}'")
        return Spec(spec.name, out)

    def build(self, spec: Spec | str | dict[str, Any], *args: Any) -> T:
        """Validate the spec and call its factory with the fixed `args` and the kwargs."""
        spec = self.validate(spec)
        return self.factory(spec.name)(*args, **spec.kwargs)
