"""The plugin manager: lsdb's default plugins, then third-party ones from entry points.

Loading is lazy (nothing happens at import) and happens once per process. lsdb's own
models, datasets, checkpoint formats and analysis families are *default plugins* that use
the same hooks as anyone else. A plugin that fails to import, registers a hook that does
not exist (``check_pending``), or raises inside a registration hook is reported by
`lsdb plugins` and skipped; with ``LSDB_STRICT_PLUGINS=1`` it is fatal instead.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from lsdb import hookspecs
from lsdb.errors import BadInput, PluginError

if TYPE_CHECKING:
    from lsdb.analyses.spec import AnalysisSpec

ENTRY_POINT_GROUP = "lsdb"
#: lsdb's own plugins, loaded first, in this order: (plugin name, module).
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("lsdb", "lsdb.default_plugins"),
    ("lsdb_surfaces", "lsdb_surfaces.plugin"),
    ("lsdb_connectivity", "lsdb_connectivity.plugin"),
    ("lsdb_curvature", "lsdb_curvature.plugin"),
    ("lsdb_structure", "lsdb_structure.plugin"),
)


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


def strict() -> bool:
    return os.environ.get("LSDB_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


class Plugins:
    """A loaded plugin manager plus the registries built from its hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("lsdb")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._analyses: dict[str, AnalysisSpec] | None = None
        self._renderers: dict[tuple[str, str], Callable[..., Any]] | None = None

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        for name, module_name in DEFAULT_PLUGINS:
            self._load(name, module_name, None, "default", functools.partial(importlib.import_module, module_name))
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else None
            self._load(ep.name, ep.value, version, "entry point", ep.load)
        # plugins by module name, e.g. for tests or a quick local plugin: LSDB_EXTRA_PLUGINS=pkg.mod,other
        for module_name in filter(None, (m.strip() for m in os.environ.get("LSDB_EXTRA_PLUGINS", "").split(","))):
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
                version = getattr(plugin, "__version__", None) or _module_version(module)
                info.version = version
            self.pm.register(plugin, name=name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(name=name)
                raise PluginError(f"plugin {name}: {exc}") from None
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [] if not h.name.startswith("_"))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must never take lsdb down
            info.error = f"{type(exc).__name__}: {exc}"
            if strict():
                raise PluginError(f"plugin {name} failed to load: {info.error}") from exc
            sys.stderr.write(f"warning: plugin {name} skipped: {info.error} (see `lsdb plugins`)\n")

    # -- registries ---------------------------------------------------------------------
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

    def analyses(self) -> dict[str, AnalysisSpec]:
        if self._analyses is None:
            from lsdb.analyses.spec import AnalysisSpec

            found: dict[str, AnalysisSpec] = {}

            def register(spec: AnalysisSpec, plugin: str = "") -> None:
                if not isinstance(spec, AnalysisSpec):
                    raise PluginError(f"plugin {plugin}: register_analyses expects an AnalysisSpec, got {spec!r}")
                if spec.name in found:
                    raise PluginError(
                        f"plugin {plugin}: analysis '{spec.name}' is already registered by {found[spec.name].plugin}"
                    )
                import dataclasses

                found[spec.name] = dataclasses.replace(spec, plugin=plugin)
                if plugin in self.infos:
                    self.infos[plugin].analyses.append(spec.name)

            self.call_registration("register_analyses", register)
            self._analyses = found
        return self._analyses

    def renderers(self) -> dict[tuple[str, str], Callable[..., Any]]:
        if self._renderers is None:
            found: dict[tuple[str, str], Callable[..., Any]] = {}

            def register(analysis: str, renderer: Callable[..., Any], name: str = "default", plugin: str = "") -> None:
                if not callable(renderer):
                    raise PluginError(f"plugin {plugin}: renderer {name!r} for '{analysis}' is not callable")
                found[(analysis, name)] = renderer

            self.call_registration("register_renderers", register)
            self._renderers = found
        return self._renderers


def _entry_points() -> list[metadata.EntryPoint]:
    try:
        return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # noqa: BLE001 - broken metadata elsewhere must not break lsdb
        return []


def _module_version(module: str) -> str | None:
    top = module.split(".")[0].split(":")[0]
    if top == "lsdb" or top.startswith("lsdb_"):
        from lsdb import __version__

        return __version__
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        return None


_lock = threading.Lock()
_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin manager, loaded on first use."""
    global _plugins
    with _lock:
        if _plugins is None:
            plugins = Plugins()
            plugins.load()
            _plugins = plugins
        return _plugins


def reset_plugins() -> None:
    """Forget loaded plugins (tests; after installing a plugin in a running process)."""
    global _plugins
    with _lock:
        _plugins = None
    from lsdb.data.registry import dataset_registry
    from lsdb.models.registry import model_registry

    model_registry.cache_clear()
    dataset_registry.cache_clear()


def get_analysis(name: str) -> AnalysisSpec:
    analyses = get_plugins().analyses()
    if name not in analyses:
        raise BadInput(f"unknown analysis '{name}'; available: {', '.join(sorted(analyses)) or 'none'}")
    return analyses[name]


def plugin_infos() -> list[PluginInfo]:
    plugins = get_plugins()
    plugins.analyses()  # attribute analyses to their plugins
    plugins.renderers()
    return list(plugins.infos.values())


def checkpoint_formats() -> list[Any]:
    """Every registered checkpoint format (built-in ones first)."""
    formats: list[Any] = []

    def register(fmt: Any, plugin: str = "") -> None:
        for attr in ("name", "suffixes", "read"):
            if not hasattr(fmt, attr):
                raise PluginError(f"plugin {plugin}: checkpoint format {fmt!r} has no '{attr}'")
        formats.append(fmt)

    get_plugins().call_registration("register_checkpoint_formats", register)
    return formats
