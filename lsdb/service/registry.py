"""What is installed, without opening a catalog: analyses, their parameters, plugins, plugin commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from lsdb.analyses.spec import AnalysisSpec
    from lsdb.plugins import PluginInfo


def list_analyses() -> list[AnalysisSpec]:
    """Every installed analysis, by name."""
    from lsdb.plugins import get_plugins

    return sorted(get_plugins().analyses().values(), key=lambda s: s.name)


def get_analysis(name: str) -> AnalysisSpec:
    """One analysis; `BadInput` listing the installed ones otherwise."""
    from lsdb.plugins import get_analysis as find

    return find(name)


def describe_analysis(name: str) -> dict[str, Any]:
    """Name, version, plugin, resources, description, inputs and parameters (type, default, help, choices)."""
    from lsdb.analyses.spec import describe_params

    spec = get_analysis(name)
    return {
        "name": spec.name,
        "version": spec.version,
        "plugin": spec.plugin,
        "resources": spec.resources,
        "description": spec.description,
        "inputs": [{"role": s.role, "kind": s.kind, "min": s.min, "max": s.max, "help": s.help} for s in spec.inputs],
        "params": describe_params(spec),
    }


def list_plugins() -> list[PluginInfo]:
    """Loaded plugins with version, hooks, analyses and any load error."""
    from lsdb.plugins import plugin_infos

    return plugin_infos()


def add_plugin_commands(app: typer.Typer) -> None:
    """Let plugins add sub-commands to the `lsdb` Typer app (their `register_commands` hook)."""
    from lsdb.plugins import get_plugins

    get_plugins().pm.hook.register_commands(app=app)
