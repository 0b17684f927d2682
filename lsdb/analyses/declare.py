"""Declaring an analysis from a plain typed function: `analysis`, `renderer`, `Param`, `Inputs`, `Trajectory`.

The function's signature is the declaration::

    @analysis("layer-norms", needs_data=False)
    def layer_norms(ctx: Context, theta: Checkpoint, other: Checkpoint | None = None, *,
                    min_numel: Annotated[int, Param(min=1, help="skip smaller tensors")] = 1) -> Output:
        ...

* Positional parameters after `ctx` are the input slots, named by the parameter and shaped by
  its annotation: `Checkpoint` (exactly one), `Checkpoint | None = None` (zero or one),
  `list[Checkpoint]` (one or more; zero or more with a default of ``()``) and `Trajectory` (a
  run's checkpoints in step order, one or more; ``Trajectory | None = None`` for zero or
  more). ``Annotated[..., Inputs(min=, max=, help=)]`` sets a slot's bounds and help (a plain
  string in `Annotated` is just its help).
* Keyword-only parameters are the analysis' parameters: their types and defaults become a
  frozen dataclass (what ``-p key=value`` is parsed into), ``Annotated[T, Param(help=,
  choices=, min=, max=)]`` adds the field metadata (a plain string: just the help), and a
  ``Literal["a", "b"]`` type is a `str` with those choices. A parameter without a default is
  required.

`analysis` returns an ordinary `AnalysisSpec` (its `run` unpacks inputs and params into the
call) and records it in the defining module's ``__lsdb_analyses__``; `renderer` records
``(analysis, name, fn)`` in ``__lsdb_renderers__``. When lsdb loads a plugin module holding
either list it registers them itself (`attach_declared`), attributed to that plugin.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

from lsdb.analyses.context import Context, InputCheckpoint, by_step, single
from lsdb.analyses.contract import AnalysisOutput, AnalysisSpec, Slot
from lsdb.errors import BadInput, PluginError

if TYPE_CHECKING:
    import pluggy
    from matplotlib.figure import Figure

    from lsdb.analyses.view import ResultView

__all__ = ["Inputs", "Param", "Trajectory", "analysis", "attach_declared", "renderer"]

ANALYSES_ATTR = "__lsdb_analyses__"
RENDERERS_ATTR = "__lsdb_renderers__"


class Trajectory(list[InputCheckpoint]):
    """A slot of kind ``"trajectory"``: all checkpoints of one run, in step order (a list)."""


@dataclass(frozen=True)
class Param:
    """Metadata of a keyword-only parameter, in ``Annotated[T, Param(...)]`` (checked by lsdb's parser)."""

    help: str = ""
    choices: Sequence[Any] | None = None
    min: float | None = None
    max: float | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"help": self.help} if self.help else {}
        if self.choices is not None:
            meta["choices"] = tuple(self.choices)
        if self.min is not None:
            meta["min"] = self.min
        if self.max is not None:
            meta["max"] = self.max
        return meta


@dataclass(frozen=True)
class Inputs:
    """Bounds and help of an input slot, in ``Annotated[list[Checkpoint], Inputs(...)]``."""

    min: int | None = None
    max: int | None = None
    help: str = ""


#: How a slot's checkpoints are handed to the function.
_Shape = Literal["one", "optional", "many", "trajectory", "optional trajectory"]
AnalysisFn = Callable[..., AnalysisOutput]
R = TypeVar("R", bound=Callable[..., Any])


def _split_annotated(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, tuple(extras)
    return hint, ()


def _optional_of(hint: Any) -> Any | None:
    """`X` for ``X | None`` / ``Optional[X]``, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _slot(where: str, p: inspect.Parameter, hint: Any) -> tuple[Slot, _Shape]:
    base, extras = _split_annotated(hint)
    bounds = next((e for e in extras if isinstance(e, Inputs)), Inputs())
    text = bounds.help or next((e for e in extras if isinstance(e, str)), "")
    inner = _optional_of(base)
    optional = inner is not None
    if optional:
        base = inner
        if p.default is not None:
            raise TypeError(f"{where}: optional input '{p.name}' must default to None")
    origin = typing.get_origin(base)
    many = base is Trajectory or origin in (list, Sequence)
    defaulted = p.default is not inspect.Parameter.empty
    if defaulted and not optional and not (many and p.default in (None, (), [])):
        raise TypeError(f"{where}: input '{p.name}' may only default to None (with a `| None` annotation)")
    if base is InputCheckpoint:
        lo, hi = (0 if optional else 1), 1
        shape: _Shape = "optional" if optional else "one"
        kind: Literal["checkpoint", "trajectory"] = "checkpoint"
    elif base is Trajectory:
        lo, hi = (0 if optional or defaulted else 1), None
        shape, kind = ("optional trajectory" if optional else "trajectory"), "trajectory"
    elif origin in (list, Sequence) and typing.get_args(base) == (InputCheckpoint,) and not optional:
        lo, hi, shape, kind = (0 if defaulted else 1), None, "many", "checkpoint"
    else:
        raise TypeError(
            f"{where}: input '{p.name}' must be annotated Checkpoint, Checkpoint | None, list[Checkpoint] or "
            f"Trajectory, got {hint!r}"
        )
    lo = bounds.min if bounds.min is not None else lo
    hi = bounds.max if bounds.max is not None else hi
    if shape == "one" and (lo, hi) != (1, 1):
        raise TypeError(f"{where}: input '{p.name}' takes exactly one checkpoint; use list[Checkpoint] for more")
    return Slot(p.name, kind=kind, min=lo, max=hi, help=text), shape


def _field(where: str, p: inspect.Parameter, hint: Any) -> tuple[str, Any, Any]:
    base, extras = _split_annotated(hint)
    meta: dict[str, Any] = {}
    for extra in extras:
        if isinstance(extra, Param):
            meta.update(extra.metadata())
        elif isinstance(extra, str):
            meta.setdefault("help", extra)
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        types_ = {type(c) for c in choices}
        if len(types_) != 1:
            raise TypeError(f"{where}: parameter '{p.name}': a Literal must hold values of one type")
        base = types_.pop()
        meta.setdefault("choices", choices)
    if p.default is inspect.Parameter.empty:
        f = dataclasses.field(metadata=meta)
    elif isinstance(p.default, (list, dict, set)):
        value = p.default
        f = dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    else:
        f = dataclasses.field(default=p.default, metadata=meta)
    return p.name, base, f


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name) if part) or "Analysis"


def _declare(
    fn: AnalysisFn,
    name: str | None,
    version: int,
    needs_data: bool,
    description: str | None,
    resources: Literal["cpu", "gpu", "any"],
    same_schema: bool,
    copies: float | None = None,
) -> AnalysisSpec:
    spec_name = name or fn.__name__.replace("_", "-")
    where = f"analysis '{spec_name}'"
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"{where}: the first parameter must be the context (ctx: Context)")
    slots: list[tuple[Slot, _Shape]] = []
    fields: list[tuple[str, Any, Any]] = []
    for p in params[1:]:
        if p.name not in hints:
            raise TypeError(f"{where}: parameter '{p.name}' needs a type annotation")
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            slots.append(_slot(where, p, hints[p.name]))
        elif p.kind is inspect.Parameter.KEYWORD_ONLY:
            fields.append(_field(where, p, hints[p.name]))
        else:
            raise TypeError(f"{where}: *args and **kwargs are not supported ('{p.name}')")
    params_cls = dataclasses.make_dataclass(f"{_camel(spec_name)}Params", fields, frozen=True, kw_only=True)
    params_cls.__module__ = fn.__module__
    params_cls.__doc__ = f"Parameters of `{spec_name}`."
    names = [f[0] for f in fields]

    def run(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params_value: Any) -> AnalysisOutput:
        args: list[Any] = []
        for slot, shape in slots:
            given = list(inputs.get(slot.role, ()))
            if shape == "one":
                args.append(single(inputs, slot.role))
            elif shape == "optional":
                if len(given) > 1:
                    raise BadInput(f"slot '{slot.role}' takes at most one checkpoint, got {len(given)}")
                args.append(given[0] if given else None)
            elif shape == "many":
                args.append(given)
            elif shape == "trajectory" or given:
                args.append(Trajectory(by_step(given)))
            else:
                args.append(None)
        out = fn(ctx, *args, **{n: getattr(params_value, n) for n in names})
        if not isinstance(out, AnalysisOutput):
            raise TypeError(f"{where}: {fn.__qualname__} returned {type(out).__name__}, not an Output")
        return out

    run.__name__ = run.__qualname__ = fn.__name__
    run.__doc__ = fn.__doc__
    run.__module__ = fn.__module__
    spec = AnalysisSpec(
        name=spec_name,
        version=version,
        run=run,
        params=params_cls,
        inputs=tuple(slot for slot, _ in slots),
        resources=resources,
        description=description if description is not None else (inspect.getdoc(fn) or ""),
        same_schema=same_schema,
        needs_data=needs_data,
        copies=None if copies is None else (lambda _params, _footprint: float(copies)),
    )
    declared: list[AnalysisSpec] = fn.__globals__.setdefault(ANALYSES_ATTR, [])
    declared[:] = [s for s in declared if s.name != spec.name] + [spec]  # a reloaded module replaces its own
    return spec


@overload
def analysis(name: AnalysisFn, /) -> AnalysisSpec: ...


@overload
def analysis(
    name: str | None = None,
    *,
    version: int = 1,
    needs_data: bool = True,
    description: str | None = None,
    resources: Literal["cpu", "gpu", "any"] = "any",
    same_schema: bool = True,
    copies: float | None = None,
) -> Callable[[AnalysisFn], AnalysisSpec]: ...


def analysis(
    name: str | AnalysisFn | None = None,
    *,
    version: int = 1,
    needs_data: bool = True,
    description: str | None = None,
    resources: Literal["cpu", "gpu", "any"] = "any",
    same_schema: bool = True,
    copies: float | None = None,
) -> AnalysisSpec | Callable[[AnalysisFn], AnalysisSpec]:
    """Declare an analysis from a typed function (see the module docstring); returns its `AnalysisSpec`.

    `name` defaults to the function's name with ``_`` as ``-``; `description` to its docstring.
    Bump `version` when the numbers it computes change (it is part of the cache key). `copies`:
    the parameter-sized vectors it holds at once, the model's own included (`AnalysisSpec.copies`).
    """
    if callable(name):
        return _declare(name, None, version, needs_data, description, resources, same_schema, copies)

    def decorate(fn: AnalysisFn) -> AnalysisSpec:
        return _declare(fn, name, version, needs_data, description, resources, same_schema, copies)

    return decorate


def renderer(
    analysis: str | AnalysisSpec, name: str = "default"
) -> Callable[[Callable[[ResultView], Figure]], Callable[[ResultView], Figure]]:
    """Declare ``fn(view) -> Figure`` as renderer `name` of `analysis` (`lsdb plot ID --kind NAME`)."""
    target = analysis.name if isinstance(analysis, AnalysisSpec) else analysis

    def decorate(fn: Callable[[ResultView], Figure]) -> Callable[[ResultView], Figure]:
        declared: list[tuple[str, str, Callable[..., Any]]] = fn.__globals__.setdefault(RENDERERS_ATTR, [])
        declared[:] = [r for r in declared if (r[0], r[1]) != (target, name)] + [(target, name, fn)]
        return fn

    return decorate


class _Info(Protocol):
    error: str | None


class _Loader(Protocol):
    """What `attach_declared` needs of lsdb's plugin loader: its pluggy manager and plugin infos."""

    @property
    def pm(self) -> pluggy.PluginManager: ...

    @property
    def infos(self) -> Mapping[str, _Info]: ...


def attach_declared(plugins: _Loader, module: object, name: str) -> list[str]:
    """Register a companion plugin for what `module` declared with `analysis`/`renderer`.

    The companion (pluggy name ``<name>+declared``) implements ``register_analyses`` and
    ``register_renderers`` for the entries of ``__lsdb_analyses__`` / ``__lsdb_renderers__``
    and attributes them to plugin `name`: in `lsdb plugins` and in `PluginError` messages.
    Returns the hooks it implements (none when the module declares nothing).
    """
    from lsdb.hookspecs import hookimpl

    analyses: list[AnalysisSpec] = list(getattr(module, ANALYSES_ATTR, None) or ())
    renderers: list[tuple[str, str, Callable[..., Any]]] = list(getattr(module, RENDERERS_ATTR, None) or ())
    if not analyses and not renderers:
        return []

    def guarded(hook: str, calls: Callable[[], None]) -> None:
        try:
            calls()
        except Exception as exc:  # noqa: BLE001 - reported like any plugin's hook failure
            message = str(exc) if isinstance(exc, PluginError) else (
                f"plugin {name}: {hook} raised {type(exc).__name__}: {exc}"
            )
            info = plugins.infos.get(name)
            if info is not None and info.error is None:
                info.error = message
            raise PluginError(message) from exc

    companion = types.SimpleNamespace()
    hooks: list[str] = []
    if analyses:

        @hookimpl
        def register_analyses(register: Callable[..., None]) -> None:
            def calls() -> None:
                for spec in analyses:
                    register(spec, plugin=name)

            guarded("register_analyses", calls)

        companion.register_analyses = register_analyses
        hooks.append("register_analyses")
    if renderers:

        @hookimpl
        def register_renderers(register: Callable[..., None]) -> None:
            def calls() -> None:
                for target, kind, fn in renderers:
                    register(target, fn, name=kind, plugin=name)

            guarded("register_renderers", calls)

        companion.register_renderers = register_renderers
        hooks.append("register_renderers")
    plugins.pm.register(companion, name=f"{name}+declared")
    return hooks
