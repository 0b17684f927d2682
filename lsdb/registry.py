"""One registry per kind of contribution, filled in one loading step and handed to what needs it.

Models, datasets, checkpoint formats, analyses and renderers are all registered the same way: a
plugin's registration hook calls ``register(...)``; the `Registry` checks the name and the type
and turns a duplicate or a wrong type into a `PluginError` that names the plugin. `Registries`
holds one registry of each kind plus the plugins' event hooks, and is built once by
`lsdb.plugins.load_registries` and passed down: nothing below the service layer looks a registry
up in a module-level cache. (Without one, `lsdb.models` and `lsdb.data` fall back to registries of
their built-ins only: `builtin_models()`, `builtin_datasets()`.)

Model and dataset registries are `FactoryRegistry`s: they also validate a spec
(``resnet:depth=20``) against the factory's signature before calling it, and resolve import
paths (``package.module:factory``) under the trust model of docs/security.md: the module must be
trusted on this machine (a loaded plugin's package, ``LSDB_TRUSTED_MODULES``, or a line of
``$LSDB_HOME/trusted_modules``) and the function declared a factory (`factory`, re-exported as
``lsdb.plugin.factory``, or a registry entry). A spec read from the catalog never widens trust:
it is checked here, on the machine that calls the factory, every time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lsdb.errors import BadInput, PluginError
from lsdb.specs import Spec, coerce_kwarg, parse_spec

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

    from lsdb.analyses.contract import AnalysisSpec
    from lsdb.analyses.view import ResultView
    from lsdb.checkpoints.formats import CheckpointFormat
    from lsdb.data.base import Dataset

T = TypeVar("T")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

#: ``renderer(view) -> Figure``.
Renderer = Callable[["ResultView"], "Figure"]

TRUST_ENV = "LSDB_TRUSTED_MODULES"
"""Comma-separated modules (and their submodules) whose declared factories specs may name."""
_FACTORY_MARK = "__lsdb_factory__"
F = TypeVar("F", bound=Callable[..., Any])


def factory(fn: F) -> F:
    """Declare `fn` a model or dataset factory that specs may name by import path
    (``package.module:fn``) when its module is trusted (public as ``lsdb.plugin.factory``)."""
    setattr(fn, _FACTORY_MARK, True)
    return fn


def trust_file() -> str:
    """The machine's trust file: ``$LSDB_HOME/trusted_modules`` (one module per line, ``#`` comments)."""
    home = os.environ.get("LSDB_HOME") or os.path.join(os.path.expanduser("~"), ".lsdb")
    return os.path.join(os.path.expanduser(home), "trusted_modules")


def locally_trusted_modules() -> set[str]:
    """Modules trusted by this machine's settings (never by anything read from the catalog)."""
    names = {m.strip() for m in os.environ.get(TRUST_ENV, "").split(",")}
    try:
        with open(trust_file(), encoding="utf-8") as fh:
            names |= {line.split("#", 1)[0].strip() for line in fh}
    except OSError:
        pass
    return {n for n in names if n}


def _within(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered value with where it came from."""

    name: str
    value: T
    plugin: str
    doc: str = ""


class Registry(Generic[T]):
    """Named values of one kind; `add` validates, `get` names what is available when a name is unknown."""

    def __init__(self, kind: str, check: Callable[[Any], str | None] | None = None) -> None:
        self.kind = kind
        self._check = check  # returns why a value is of the wrong type, or None
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, value: T, plugin: str = "lsdb", doc: str = "") -> None:
        """Register `value` as `name`; `PluginError` naming `plugin` for a bad name, type or duplicate."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin}: invalid {self.kind} name {name!r}")
        if self._check is not None:
            problem = self._check(value)
            if problem:
                raise PluginError(f"plugin {plugin}: {self.kind} '{name}' {problem}")
        if name in self._entries:
            raise PluginError(f"plugin {plugin}: {self.kind} '{name}' is already registered by "
                              f"{self._entries[name].plugin}")
        self._entries[name] = Entry(name, value, plugin, doc)

    def get(self, name: str) -> T:
        """The value registered as `name`; `BadInput` listing the available names otherwise."""
        entry = self._entries.get(name)
        if entry is None:
            raise BadInput(f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or 'none'}")
        return entry.value

    def find(self, name: str) -> T | None:
        entry = self._entries.get(name)
        return entry.value if entry is not None else None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """In registration order (built-ins first; the order checkpoint formats are tried in)."""
        return list(self._entries.values())

    def values(self) -> list[T]:
        return [e.value for e in self.entries()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


class FactoryRegistry(Registry[Callable[..., T]]):
    """Named factories (models, datasets) that specs name; `validate` checks a spec's arguments.

    ``fixed_args`` positional arguments are supplied by the caller (a model factory gets
    ``input_shape, num_classes``); the rest of the signature is what a spec may set.
    """

    def __init__(self, kind: str, fixed_args: int = 0, trusted_packages: set[str] | None = None) -> None:
        super().__init__(kind, lambda v: None if callable(v) else "is not callable")
        self._fixed_args = fixed_args
        #: the packages of the plugins loaded on this machine (their declared factories are trusted)
        self.trusted_packages: set[str] = set(trusted_packages or {"lsdb"})

    def register(self, name: str, factory: Callable[..., T], *, doc: str | None = None, plugin: str = "lsdb") -> None:
        """The callback registration hooks receive: ``register(name, factory, doc=None)``."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PluginError(f"plugin {plugin}: invalid {self.kind} name {name!r}")
        text = doc if doc is not None else (inspect.getdoc(factory) or "").split("\n\n")[0]
        self.add(name, factory, plugin, text)

    def factory(self, name: str) -> Callable[..., T]:
        """The factory for a registered name or an import path ``module:factory``."""
        found = self.find(name)
        if found is not None:
            return found
        if ":" in name:
            module_name, _, attr = name.partition(":")
            if not (_within(module_name, self.trusted_packages) or _within(module_name, locally_trusted_modules())):
                raise BadInput(
                    f"{self.kind} '{name}': module '{module_name}' is not trusted on this machine; to allow it, "
                    f"add it to {TRUST_ENV} or to {trust_file()} (see docs/security.md)"
                )
            try:
                module = importlib.import_module(module_name)
            except (ImportError, ValueError, TypeError) as exc:  # ValueError/TypeError: '', '.x' (found by fuzzing)
                raise BadInput(f"{self.kind} '{name}': cannot import module '{module_name}' ({exc})") from None
            fn = getattr(module, attr, None)
            if not callable(fn):
                raise BadInput(f"{self.kind} '{name}': module '{module_name}' has no callable '{attr}'")
            declared = getattr(fn, _FACTORY_MARK, False) is True or any(fn is e.value for e in self.entries())
            if not declared:
                raise BadInput(f"{self.kind} '{name}': '{attr}' is not declared a factory (decorate it with "
                               "@lsdb.plugin.factory or register it through a plugin)")
            return fn
        raise BadInput(f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or 'none'} "
                       "(or module.path:factory)")

    def accepted_kwargs(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword arguments a factory accepts (after its fixed positional ones)."""
        params = list(inspect.signature(self.factory(name)).parameters.values())[self._fixed_args:]
        return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def validate(self, spec: Spec | str | dict[str, Any]) -> Spec:
        """Parse the spec and check its kwargs' names and types; the typed spec."""
        spec = parse_spec(spec, self.kind)
        fn = self.factory(spec.name)
        params = list(inspect.signature(fn).parameters.values())[self._fixed_args:]
        accepted = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable annotations: check names only
            hints = {}
        out: dict[str, Any] = {}
        for key, value in spec.kwargs.items():
            if key not in accepted:
                if takes_any:
                    out[key] = value
                    continue
                raise BadInput(f"{self.kind} '{spec.name}': unknown argument '{key}'; accepted: "
                               f"{', '.join(accepted) or 'none'}")
            out[key] = coerce_kwarg(key, value, hints.get(key, accepted[key].annotation), f"{self.kind} '{spec.name}'")
        return Spec(spec.name, out)

    def build(self, spec: Spec | str | dict[str, Any], *args: Any) -> T:
        """Validate the spec and call its factory with the fixed `args` and the kwargs."""
        spec = self.validate(spec)
        return self.factory(spec.name)(*args, **spec.kwargs)


class RendererRegistry(Registry[Renderer]):
    """Renderers by analysis and kind: ``register(analysis, renderer, name="default")``."""

    def __init__(self) -> None:
        super().__init__("renderer", lambda v: None if callable(v) else "is not callable")

    def register(self, analysis: str, renderer: Renderer, name: str = "default", plugin: str = "lsdb") -> None:
        self.add(f"{analysis}/{name}", renderer, plugin)

    def kinds(self, analysis: str) -> dict[str, Renderer]:
        """The renderers of one analysis, by kind."""
        prefix = f"{analysis}/"
        return {e.name[len(prefix):]: e.value for e in self.entries() if e.name.startswith(prefix)}


#: ``interactive(view) -> dict``: a plotly figure (``{"data": [...], "layout": {...}}``).
InteractiveRenderer = Callable[["ResultView"], "dict[str, Any]"]


class InteractiveRegistry(Registry[InteractiveRenderer]):
    """Interactive (plotly JSON) views by analysis and name: ``register(analysis, fn, name="default")``."""

    def __init__(self) -> None:
        super().__init__("interactive renderer", lambda v: None if callable(v) else "is not callable")

    def register(self, analysis: str, renderer: InteractiveRenderer, name: str = "default",
                 plugin: str = "lsdb") -> None:
        self.add(f"{analysis}/{name}", renderer, plugin)

    def kinds(self, analysis: str) -> dict[str, InteractiveRenderer]:
        """The interactive views of one analysis, by name."""
        prefix = f"{analysis}/"
        return {e.name[len(prefix):]: e.value for e in self.entries() if e.name.startswith(prefix)}


@dataclass
class PluginInfo:
    """What `lsdb plugins` shows for one plugin."""

    name: str
    module: str
    version: str | None
    source: str  # "default" | "entry point" | "env" (LSDB_EXTRA_PLUGINS)
    hooks: list[str] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)
    error: str | None = None


class Events:
    """The plugins' event hooks (`checkpoint_ingested`, `result_stored`, `job_finished`).

    A listener that raises never undoes what was committed: its error is reported on stderr.
    """

    def __init__(self, hook: Any = None) -> None:
        self._hook = hook

    def _fire(self, name: str, **kwargs: Any) -> None:
        if self._hook is None:
            return
        caller = getattr(self._hook, name)
        if not caller.get_hookimpls():
            return
        try:
            caller(**kwargs)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a listener must not undo a committed fact
            import sys

            sys.stderr.write(f"warning: a {name} listener failed: {type(exc).__name__}: {exc}\n")

    def checkpoint_ingested(self, checkpoint: Any) -> None:
        self._fire("checkpoint_ingested", checkpoint=checkpoint)

    def result_stored(self, result: Any) -> None:
        self._fire("result_stored", result=result)

    def job_finished(self, job: Any) -> None:
        self._fire("job_finished", job=job)

    @property
    def listens_for_jobs(self) -> bool:
        return self._hook is not None and bool(self._hook.job_finished.get_hookimpls())


@dataclass
class Registries:
    """Everything the plugins registered, one registry per kind, plus their event hooks."""

    models: FactoryRegistry[nn.Module]
    datasets: FactoryRegistry[Dataset]
    formats: Registry[CheckpointFormat]
    analyses: Registry[AnalysisSpec]
    renderers: RendererRegistry
    events: Events = field(default_factory=Events)
    plugins: list[PluginInfo] = field(default_factory=list)
    #: the pluggy hook relay, for hooks that are not registries (`register_commands`)
    hook: Any = None
    #: interactive (plotly) views for `lsdb ui` and HTML exports (`register_interactive_renderers`)
    interactive: InteractiveRegistry = field(default_factory=InteractiveRegistry)

    def plugin_version(self, name: str) -> str | None:
        return next((p.version for p in self.plugins if p.name == name), None)


def check_format(fmt: Any) -> str | None:
    """Why `fmt` is not a checkpoint format (it needs `name`, `suffixes` and `read`), or None."""
    missing = [a for a in ("name", "suffixes", "read") if not hasattr(fmt, a)]
    return f"has no {', '.join(repr(m) for m in missing)}" if missing else None
