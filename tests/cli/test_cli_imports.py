"""The CLI is a thin client of `lsdb.service`: it imports nothing heavy and no internals."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lsdb.cli.app

CLI_DIR = Path(lsdb.cli.app.__file__).parent
THIRD_PARTY = {"typer", "click", "rich"}
LSDB_ALLOWED = ("lsdb.service", "lsdb.errors", "lsdb.config", "lsdb.allocator", "lsdb.cli")


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in THIRD_PARTY or top == "__future__" or (top in sys.stdlib_module_names and top != "lsdb"):
        return True
    return any(module == m or module.startswith(m + ".") for m in LSDB_ALLOWED)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth (in functions, under TYPE_CHECKING), as (line, name)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{path.name}:{node.lineno}: relative import"
            if node.module == "lsdb":  # `from lsdb import x` imports lsdb.x
                found.extend((node.lineno, f"lsdb.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, node.module))
    return found


def test_cli_imports_only_the_service_layer_and_its_ui_libraries() -> None:
    files = sorted(CLI_DIR.glob("*.py"))
    assert len(files) > 5
    bad = [f"{p.name}:{line}: {name}" for p in files for line, name in _imports(p) if not _allowed(name)]
    assert bad == []


def test_the_scan_catches_internals_and_heavy_libraries() -> None:
    for name in ("torch", "numpy", "sqlalchemy", "lsdb.catalog", "lsdb.jobs.queue", "lsdb.plugins", "lsdb.query",
                 "lsdb.analyses.runner", "lsdb"):
        assert not _allowed(name), name
    for name in ("typer", "rich.progress", "json", "lsdb.service", "lsdb.service.results", "lsdb.errors",
                 "lsdb.cli.render"):
        assert _allowed(name), name


def test_importing_the_cli_imports_neither_torch_nor_sqlalchemy() -> None:
    code = ("import sys, lsdb.cli.app; "
            "print(sorted(m for m in ('torch', 'sqlalchemy', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_commands_that_need_no_catalog_open_none(tmp_path: Path) -> None:
    """`lsdb analyses`, `lsdb analyses show`, `lsdb plugins` and `--help` never create a catalog."""
    import os

    env = {**os.environ, "LSDB_HOME": str(tmp_path / "home")}
    env.pop("LSDB_DATABASE_URL", None)
    env.pop("LSDB_STORE", None)
    for args in (["--help"], ["analyses", "--format", "json"], ["analyses", "show", "surface", "--format", "json"],
                 ["plugins", "--format", "json"], ["run", "--help"]):
        out = subprocess.run([sys.executable, "-m", "lsdb.cli.app", *args], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, (args, out.stderr)
    assert not (tmp_path / "home").exists()
