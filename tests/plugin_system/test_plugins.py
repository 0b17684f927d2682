"""The plugin system: documented hooks, broken plugins reported and skipped, strict mode."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

from lsdb import hookspecs
from lsdb.checkpoints import builtin_formats


def _hook_functions() -> list[str]:
    return [n for n, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "lsdb_spec")]


def test_every_hook_is_documented_and_typed() -> None:
    names = _hook_functions()
    assert {
        "register_analyses",
        "register_models",
        "register_datasets",
        "register_checkpoint_formats",
        "register_commands",
        "register_renderers",
        "checkpoint_ingested",
        "job_finished",
    } <= set(names)
    for name in names:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__.strip()) > 20, f"hook {name} is undocumented"
        sig = inspect.signature(fn)
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
        assert sig.return_annotation is not inspect.Signature.empty, name


def test_docs_mention_every_hook() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    missing = [n for n in _hook_functions() if n not in doc]
    assert not missing, f"docs/plugins.md does not document: {missing}"


def _plugins_json(extra: str, strict: bool = False) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "LSDB_EXTRA_PLUGINS": extra}
    if strict:
        env["LSDB_STRICT_PLUGINS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "lsdb.cli.app", "plugins", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("module", "needle"),
    [
        ("tests.plugin_system.broken_import", "broken on purpose"),
        ("tests.plugin_system.misspelled", "register_analysis"),
        ("tests.plugin_system.raising", "boom"),
    ],
)
def test_broken_plugin_is_reported_and_skipped(module: str, needle: str) -> None:
    out = _plugins_json(module)
    assert out.returncode == 0, out.stderr
    rows = {p["plugin"]: p for p in json.loads(out.stdout)}
    assert needle in (rows[module]["error"] or "")
    assert "lsdb" in rows and rows["lsdb"]["error"] is None
    assert "skipped" in out.stderr or "warning" in out.stderr


@pytest.mark.parametrize("module", ["tests.plugin_system.broken_import", "tests.plugin_system.misspelled"])
def test_strict_mode_makes_a_broken_plugin_fatal(module: str) -> None:
    out = _plugins_json(module, strict=True)
    assert out.returncode != 0
    assert module in out.stderr.strip().splitlines()[-1]


def test_builtin_registries_come_through_hooks() -> None:
    from lsdb.plugins import load_registries

    registries = load_registries()
    infos = {p.name: p for p in registries.plugins}
    assert set(infos["lsdb"].hooks) >= {"register_models", "register_datasets", "register_checkpoint_formats"}
    assert {e.plugin for e in registries.models.entries()} == {"lsdb"}
    assert {e.plugin for e in registries.datasets.entries()} == {"lsdb"}
    assert [f.name for f in registries.formats.values()][:2] == [f.name for f in builtin_formats()]
