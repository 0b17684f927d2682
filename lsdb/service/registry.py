"""What is installed, without opening a catalog: analyses, their parameters, plugins, plugin commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from lsdb.analyses.contract import AnalysisSpec
    from lsdb.registry import PluginInfo, Registries


def registries() -> Registries:
    """This process' loaded plugins (loaded on first use)."""
    from lsdb.plugins import default_registries

    return default_registries()


def list_analyses(reg: Registries | None = None) -> list[AnalysisSpec]:
    """Every installed analysis, by name."""
    return sorted((reg or registries()).analyses.values(), key=lambda s: s.name)


def get_analysis(name: str, reg: Registries | None = None) -> AnalysisSpec:
    """One analysis; `BadInput` listing the installed ones otherwise."""
    return (reg or registries()).analyses.get(name)


def describe_analysis(name: str, reg: Registries | None = None) -> dict[str, Any]:
    """Name, version, plugin, resources, description, inputs and parameters (type, default, help, choices)."""
    from lsdb.analyses.contract import describe_params

    spec = get_analysis(name, reg)
    return {
        "name": spec.name,
        "version": spec.version,
        "plugin": spec.plugin,
        "resources": spec.resources,
        "description": spec.description,
        "inputs": [{"role": s.role, "kind": s.kind, "min": s.min, "max": s.max, "help": s.help} for s in spec.inputs],
        "params": describe_params(spec),
    }


def list_plugins(reg: Registries | None = None) -> list[PluginInfo]:
    """Loaded plugins with version, hooks, analyses and any load error."""
    return list((reg or registries()).plugins)


def add_plugin_commands(app: typer.Typer, reg: Registries | None = None) -> None:
    """Let plugins add sub-commands to the `lsdb` Typer app (their `register_commands` hook)."""
    (reg or registries()).hook.register_commands(app=app)
