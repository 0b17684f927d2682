"""`lsdb --help` lists every command from a static table, without importing the commands or the plugins."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from lsdb.cli.app import app
from lsdb.cli.group import COMMANDS

CLI_DIR = Path(__file__).resolve().parents[2] / "lsdb" / "cli"


@functools.cache
def _fully_loaded() -> dict[str, typer._click.Command]:
    """Every command, built the eager way: each `*_cmds` module's `register`, then the plugins'."""
    import importlib

    from lsdb.service import add_plugin_commands

    full = typer.Typer()
    for path in sorted(CLI_DIR.glob("*_cmds.py")):
        importlib.import_module(f"lsdb.cli.{path.stem}").register(full)
    add_plugin_commands(full)
    return dict(typer.main.get_group(full).commands)


def _lsdb(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsdb.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **env})


def _listed(help_text: str) -> list[str]:
    """The command names in the Commands panel of a rich help screen."""
    panel = help_text.split("─ Commands ")[1].split("╰")[0]
    return re.findall(r"^│ (\S+)\s", panel, flags=re.MULTILINE)


def test_root_help_lists_the_same_commands_as_the_fully_loaded_app() -> None:
    out = _lsdb("--help")
    assert out.returncode == 0, out.stderr
    full = _fully_loaded()
    assert sorted(_listed(out.stdout)) == sorted(full)
    assert "lsdb plugins" in out.stdout  # where plugins' commands are found


def test_the_table_holds_each_commands_own_one_line_help() -> None:
    full = _fully_loaded()
    assert {name: entry.help for name, entry in COMMANDS.items()} == {
        name: full[name].get_short_help_str(1000) for name in COMMANDS
    }
    for name, entry in COMMANDS.items():  # and the module that registers it
        registered = typer.Typer()
        __import__(entry.module, fromlist=["register"]).register(registered)
        assert name in typer.main.get_group(registered).commands, (name, entry.module)


def test_root_help_imports_no_heavy_library_nor_the_commands() -> None:
    code = (
        "import sys\n"
        "from lsdb.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "heavy = ('torch', 'numpy', 'sqlalchemy', 'lsdb.plugins', 'lsdb.service')\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.endswith('_cmds')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Commands" in out.stdout  # the help was printed
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_and_sub_command_help_works() -> None:
    runner = CliRunner()
    full = _fully_loaded()
    paths = [[name] for name in COMMANDS]
    paths += [[name, sub] for name in COMMANDS for sub in getattr(full[name], "commands", {})]
    assert len(paths) > len(COMMANDS)  # the groups' sub-commands are covered too
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: lsdb " + " ".join(path) in result.output


def test_a_plugins_command_runs_and_shows_its_help() -> None:
    code = (
        "from lsdb.cli.app import main\n"
        "for args in (['hello', '--help'], ['hello', '--name', 'lsdb']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (args, exc.code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LSDB_EXTRA_PLUGINS": "tests.cli.commanding_plugin"})
    assert out.returncode == 0, out.stderr
    assert "Greet someone" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "hello lsdb"


def test_a_typo_is_a_usage_error_with_a_suggestion() -> None:
    result = CliRunner().invoke(app, ["chekpoints"])
    assert result.exit_code == 2
    assert "No such command 'chekpoints'" in result.output and "'checkpoints'" in result.output
