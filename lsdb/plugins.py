"""Loading plugins into `Registries`: lsdb's default plugins, then third-party ones from entry points.

`load_registries` is the one loading step: it imports every plugin (default plugins first,
then entry points of group ``lsdb``, then ``LSDB_EXTRA_PLUGINS``), calls each registration hook
once, and returns one `lsdb.registry.Registries`. Nothing happens at import. A plugin that fails
to import, implements a hook that does not exist (``check_pending``), or raises (or registers
something invalid) inside a registration hook is reported by `lsdb plugins` and skipped; with
``LSDB_STRICT_PLUGINS=1`` it is fatal instead.

Entry points (the CLI, a worker's job process, `lsdb.open_catalog`) load the process' registries
once with `default_registries` and hand them down.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from lsdb import hookspecs
from lsdb.errors import PluginError
from lsdb.registry import (
    Events,
    FactoryRegistry,
    InteractiveRegistry,
    PluginInfo,
    Registries,
    Registry,
    RendererRegistry,
    check_format,
)

if TYPE_CHECKING:
    from lsdb.analyses.contract import AnalysisSpec
    from lsdb.checkpoints.formats import CheckpointFormat

__all__ = ["PluginInfo", "PluginLoader", "default_registries", "load_registries", "reset_plugins", "resolve"]

ENTRY_POINT_GROUP = "lsdb"
#: lsdb's own plugins, loaded first, in this order: (plugin name, module).
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("lsdb", "lsdb.default_plugins"),
    ("lsdb_surfaces", "lsdb_surfaces.plugin"),
    ("lsdb_connectivity", "lsdb_connectivity.plugin"),
    ("lsdb_curvature", "lsdb_curvature.plugin"),
    ("lsdb_structure", "lsdb_structure.plugin"),
    ("lsdb_spectra", "lsdb_spectra.plugin"),
    ("lsdb_alignment", "lsdb_alignment.plugin"),
)


def strict() -> bool:
    return os.environ.get("LSDB_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


class PluginLoader:
    """A pluggy manager, the plugins it loaded (`infos`), and the registration step."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("lsdb")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    # -- loading ------------------------------------------------------------------------
    def load(self, extra: Sequence[str] = ()) -> None:
        """Import the default plugins, the entry points and `extra` (plus ``LSDB_EXTRA_PLUGINS``) modules."""
        for name, module_name in DEFAULT_PLUGINS:
            self._load(name, module_name, None, "default", functools.partial(importlib.import_module, module_name))
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            self._load(ep.name, ep.value, dist.version if dist is not None else None, "entry point", ep.load)
        # plugins by module name, e.g. for tests or a quick local plugin: LSDB_EXTRA_PLUGINS=pkg.mod,other
        env = [m.strip() for m in os.environ.get("LSDB_EXTRA_PLUGINS", "").split(",")]
        for module_name in filter(None, [*env, *extra]):
            self._load(module_name, module_name, None, "env", functools.partial(importlib.import_module, module_name))

    def _load(self, name: str, module: str, version: str | None, source: str, loader: Callable[[], Any]) -> None:
        info = PluginInfo(name=name, module=module, version=version, source=source)
        self.infos[name] = info
        try:
            plugin = loader()
            if self.pm.is_registered(plugin):  # e.g. an installed plugin also named in LSDB_EXTRA_PLUGINS
                del self.infos[name]
                return
            if version is None:
                info.version = getattr(plugin, "__version__", None) or _module_version(module)
            self.pm.register(plugin, name=name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(name=name)
                raise PluginError(f"plugin {name}: {exc}") from None
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [] if not h.name.startswith("_"))
            from lsdb.analyses.declare import attach_declared  # `lsdb.plugin.analysis`/`renderer` declarations

            info.hooks = sorted({*info.hooks, *attach_declared(self, plugin, name)})
        except Exception as exc:  # noqa: BLE001 - a broken plugin must never take lsdb down
            info.error = f"{type(exc).__name__}: {exc}"
            if strict():
                raise PluginError(f"plugin {name} failed to load: {info.error}") from exc
            sys.stderr.write(f"warning: plugin {name} skipped: {info.error} (see `lsdb plugins`)\n")

    # -- registration -------------------------------------------------------------------
    def call_registration(self, hook_name: str, register: Callable[..., None]) -> None:
        """Call one registration hook of every plugin, attributing what each registers."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():  # registration order (pluggy calls them LIFO)
            plugin = impl.plugin_name

            def attributed(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
                kwargs.setdefault("plugin", _plugin)
                register(*args, **kwargs)

            try:
                impl.function(**{name: attributed for name in impl.argnames})
            except PluginError as exc:
                self._fail(plugin, str(exc))
            except Exception as exc:  # noqa: BLE001
                self._fail(plugin, f"plugin {plugin}: {hook_name} raised {type(exc).__name__}: {exc}")

    def _fail(self, plugin: str, message: str) -> None:
        if plugin in self.infos and self.infos[plugin].error is None:
            self.infos[plugin].error = message
        if strict():
            raise PluginError(message)
        sys.stderr.write(f"warning: {message}\n")

    def registries(self) -> Registries:
        """Call every registration hook once and collect what was registered, validated."""
        from lsdb.analyses.contract import AnalysisSpec

        # the packages of the plugins loaded here: their declared factories may be named by import path
        trusted = {"lsdb"} | {
            info.module.split(":", 1)[0].split(".", 1)[0] for info in self.infos.values() if info.error is None
        }
        models: FactoryRegistry[Any] = FactoryRegistry("model", fixed_args=2, trusted_packages=trusted)
        datasets: FactoryRegistry[Any] = FactoryRegistry("dataset", fixed_args=0, trusted_packages=trusted)
        formats: Registry[CheckpointFormat] = Registry("checkpoint format", check_format)
        analyses: Registry[AnalysisSpec] = Registry(
            "analysis", lambda v: None if isinstance(v, AnalysisSpec) else f"is {v!r}, not an AnalysisSpec")
        renderers = RendererRegistry()

        def add_analysis(spec: AnalysisSpec, plugin: str = "") -> None:
            if not isinstance(spec, AnalysisSpec):
                raise PluginError(f"plugin {plugin}: register_analyses expects an AnalysisSpec, got {spec!r}")
            analyses.add(spec.name, dataclasses.replace(spec, plugin=plugin), plugin, spec.summary)
            if plugin in self.infos:
                self.infos[plugin].analyses.append(spec.name)

        def add_format(fmt: CheckpointFormat, plugin: str = "") -> None:
            formats.add(str(getattr(fmt, "name", repr(fmt))), fmt, plugin)

        self.call_registration("register_models", models.register)
        self.call_registration("register_datasets", datasets.register)
        self.call_registration("register_checkpoint_formats", add_format)
        self.call_registration("register_analyses", add_analysis)
        self.call_registration("register_renderers", renderers.register)
        interactive = InteractiveRegistry()
        self.call_registration("register_interactive_renderers", interactive.register)
        return Registries(models=models, datasets=datasets, formats=formats, analyses=analyses, renderers=renderers,
                          events=Events(self.pm.hook), plugins=list(self.infos.values()), hook=self.pm.hook,
                          interactive=interactive)


def load_registries(extra: Sequence[str] = ()) -> Registries:
    """Load every plugin (and the `extra` modules) and build the registries: lsdb's one loading step."""
    loader = PluginLoader()
    loader.load(extra)
    return loader.registries()


def _entry_points() -> list[metadata.EntryPoint]:
    try:
        return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # noqa: BLE001 - broken metadata elsewhere must not break lsdb
        return []


def _module_version(module: str) -> str | None:
    top = module.split(".")[0].split(":")[0]
    if top == "lsdb" or top.startswith("lsdb_"):
        from lsdb._version import __version__

        return __version__
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        return None


_lock = threading.Lock()
_default: Registries | None = None


def default_registries() -> Registries:
    """This process' registries, loaded on first use (what the entry points hand down)."""
    global _default
    with _lock:
        if _default is None:
            _default = load_registries()
        return _default


def resolve(registries: Registries | None) -> Registries:
    """`registries`, or this process' when the caller passed none (internal functions called directly)."""
    return registries if registries is not None else default_registries()


def reset_plugins() -> None:
    """Forget this process' registries (tests; after installing a plugin in a running process)."""
    global _default
    with _lock:
        _default = None
