"""The root `lsdb` group: a sub-command is built only when it is run or asked for its own help.

Building every command imports every `*_cmds` module, and plugins' commands (the
`register_commands` hook) need every plugin loaded, and with them torch: 1.6 s for `lsdb --help`.
The root help needs none of it: it lists the built-in commands from `COMMANDS`, a static table of
each command's module and one-line help (`tests/cli/test_cli_help.py` keeps the table equal to the
commands themselves). `lsdb NAME ...` imports NAME's module only and builds its commands through
the module's `register(app)`; a name the table does not know loads the plugins' commands, the one
path that loads the plugin registry.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import typer
from typer._click import Command, Context, HelpFormatter  # the click that Typer vendors: TyperGroup's own types
from typer.core import TyperCommand, TyperGroup


class LazyCommand(NamedTuple):
    module: str
    """The `lsdb.cli` module whose ``register(app)`` adds the command."""
    help: str
    """Its one-line help, as the root help lists it (the command's ``get_short_help_str``)."""


COMMANDS: dict[str, LazyCommand] = {
    "init": LazyCommand(
        "lsdb.cli.db_cmds",
        "Create the catalog (at the current schema) and the store, or check an existing one.",
    ),
    "ingest": LazyCommand(
        "lsdb.cli.ingest_cmds",
        "Ingest checkpoints (.pt/.pth/.bin/.ckpt/.safetensors) safely: weights only, never code.",
    ),
    "runs": LazyCommand(
        "lsdb.cli.catalog_cmds",
        "List runs with their model, dataset, checkpoint count and last metrics.",
    ),
    "checkpoints": LazyCommand(
        "lsdb.cli.catalog_cmds",
        "List checkpoints (a run's trajectory is its checkpoints by step).",
    ),
    "gc": LazyCommand("lsdb.cli.maintenance_cmds", "Remove store objects that no catalog row refers to."),
    "doctor": LazyCommand(
        "lsdb.cli.maintenance_cmds",
        "Re-hash every stored object and report missing or corrupt ones (non-zero exit if any).",
    ),
    "run": LazyCommand(
        "lsdb.cli.analysis_cmds",
        "Run an analysis: inline now (--inline), or as a job for the workers.",
    ),
    "plugins": LazyCommand("lsdb.cli.analysis_cmds", "Loaded plugins: version, hooks, analyses and any load error."),
    "plot": LazyCommand("lsdb.cli.results_cmds", "Plot a result with its analysis' renderer."),
    "worker": LazyCommand(
        "lsdb.cli.jobs_cmds",
        "Claim and run jobs on one device until stopped (SIGTERM/Ctrl-C finish or release the current job).",
    ),
    "compare": LazyCommand("lsdb.cli.compare_cmds", "Compare runs, or one analysis' results, in one table."),
    "train": LazyCommand(
        "lsdb.cli.train_cmds",
        "Train a model on a dataset, checkpointing along the way; Ctrl-C stops cleanly (resume later).",
    ),
    "ui": LazyCommand("lsdb.cli.ui_cmds", "Serve the web UI (runs, results in 3D, compare, jobs) over this catalog."),
    "db": LazyCommand("lsdb.cli.db_cmds", "Catalog schema: upgrade and inspect."),
    "show": LazyCommand("lsdb.cli.catalog_cmds", "Show one object in detail."),
    "analyses": LazyCommand("lsdb.cli.analysis_cmds", "List the analyses plugins provide, or show one."),
    "results": LazyCommand("lsdb.cli.results_cmds", "Stored analysis results."),
    "jobs": LazyCommand("lsdb.cli.jobs_cmds", "Jobs: list, show, cancel, retry, and their event log."),
    "workers": LazyCommand("lsdb.cli.jobs_cmds", "Workers: list them (default), or start one per device."),
}
"""Every built-in command, in the order the root help lists them."""

PLUGIN_COMMANDS_NOTE = ("Plugins can add commands (their register_commands hook): `lsdb plugins` lists each plugin's "
                        "hooks, and `lsdb COMMAND --help` shows such a command's help.")

_LISTING = "lsdb.cli.group.listing"
"""`Context.meta` key, set while the root's own help is formatted: commands are then listed from the table."""


def _commands_of(register_into: typer.Typer) -> dict[str, Command]:
    """The click commands of a Typer app that a ``register`` function has filled."""
    return dict(typer.main.get_group(register_into).commands)


class LazyGroup(TyperGroup):
    """A `TyperGroup` that builds its built-in commands from `COMMANDS` on first use.

    Commands registered on the Typer app itself (tests do this) are used as they are; the table's
    commands join them module by module; plugins' commands are loaded on the first name that is
    neither, and never replace a built-in one."""

    _plugins_loaded = False

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:
            entry = COMMANDS[cmd_name]
            if ctx.meta.get(_LISTING):
                return TyperCommand(name=cmd_name, help=entry.help, short_help=entry.help)
            self._load_module(entry.module)
        else:  # a plugin's command, or a typo (then everything is loaded, for "did you mean")
            for module in dict.fromkeys(e.module for e in COMMANDS.values()):
                self._load_module(module)
            self._load_plugin_commands()
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop(_LISTING, None)

    def _load_module(self, module: str) -> None:
        app = typer.Typer()
        importlib.import_module(module).register(app)
        for name, command in _commands_of(app).items():
            self.commands.setdefault(name, command)

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        from lsdb.service import add_plugin_commands

        app = typer.Typer()
        add_plugin_commands(app)
        for name, command in _commands_of(app).items():
            self.commands.setdefault(name, command)
        self._plugins_loaded = True
