"""The decorator contract of `lsdb.plugin`: slots and params from a signature, loading, attribution;
and the rule that analysis families use only lsdb's public plugin API."""

from __future__ import annotations

import ast
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytest
from matplotlib.figure import Figure

from lsdb.analyses.contract import describe_params, parse_params
from lsdb.plugin import (
    AnalysisSpec,
    BadInput,
    Checkpoint,
    Context,
    Inputs,
    Output,
    Param,
    ResultView,
    Slot,
    Trajectory,
    analysis,
    renderer,
)

ROOT = Path(__file__).resolve().parents[2]


@analysis("sig-demo", version=3, needs_data=False, resources="cpu", same_schema=False)
def sig_demo(
    ctx: Context,
    center: Checkpoint,
    other: Checkpoint | None = None,
    members: Annotated[list[Checkpoint], Inputs(min=2, max=4, help="the ensemble")] = None,  # type: ignore[assignment]
    path: Trajectory | None = None,
    *,
    steps: Annotated[int, Param(min=2, max=10, help="points along the line")] = 5,
    norm: Annotated[str, Param(choices=("filter", "layer"), help="normalization")] = "filter",
    mode: Literal["fast", "exact"] = "fast",
    rows: list[int] = [],  # noqa: B006 - becomes a default_factory
    tol: float,
) -> Output:
    """A demo analysis.

    Its second paragraph."""
    return Output()


def test_slots_come_from_the_positional_parameters() -> None:
    assert isinstance(sig_demo, AnalysisSpec)
    assert sig_demo.name == "sig-demo" and sig_demo.version == 3
    assert (sig_demo.needs_data, sig_demo.resources, sig_demo.same_schema) == (False, "cpu", False)
    assert sig_demo.summary == "A demo analysis."
    assert sig_demo.inputs == (
        Slot("center", min=1, max=1),
        Slot("other", min=0, max=1),
        Slot("members", min=2, max=4, help="the ensemble"),
        Slot("path", kind="trajectory", min=0, max=None),
    )


def test_params_come_from_the_keyword_only_parameters() -> None:
    cls = sig_demo.params
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert list(fields) == ["steps", "norm", "mode", "rows", "tol"]
    hints = typing.get_type_hints(cls)
    assert hints == {"steps": int, "norm": str, "mode": str, "rows": list[int], "tol": float}
    assert dict(fields["steps"].metadata) == {"min": 2, "max": 10, "help": "points along the line"}
    assert fields["norm"].metadata["choices"] == ("filter", "layer")
    assert fields["mode"].metadata["choices"] == ("fast", "exact")
    rows = {r["name"]: r for r in describe_params(sig_demo)}
    assert rows["steps"]["default"] == 5 and rows["steps"]["help"] == "points along the line"
    assert rows["tol"]["required"] and not rows["steps"]["required"]
    assert rows["rows"]["default"] == []

    parsed = parse_params(sig_demo, {"steps": "7", "tol": "0.5", "rows": "[1, 2]"})
    assert (parsed.steps, parsed.norm, parsed.mode, parsed.rows, parsed.tol) == (7, "filter", "fast", [1, 2], 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.steps = 3


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"tol": "1", "steps": "1"}, "parameter 'steps' must be >= 2, got 1"),
        ({"tol": "1", "steps": "11"}, "parameter 'steps' must be <= 10, got 11"),
        ({"tol": "1", "norm": "none"}, "parameter 'norm' must be one of filter, layer"),
        ({"tol": "1", "mode": "slow"}, "parameter 'mode' must be one of fast, exact"),
        ({"tol": "1", "steps": "many"}, "parameter 'steps' must be int"),
        ({"tol": "1", "stepz": "3"}, "unknown parameter 'stepz'; accepted: steps, norm, mode, rows, tol"),
        ({}, "missing required parameter(s): tol"),
    ],
)
def test_parse_params_enforces_the_declared_metadata(given: dict[str, str], needle: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_params(sig_demo, given)
    message = str(err.value)
    assert needle in message and "\n" not in message and message.startswith("analysis 'sig-demo'")


def test_run_unpacks_inputs_and_params() -> None:
    seen: dict[str, object] = {}

    @analysis
    def unpacking(ctx: Context, a: Checkpoint, b: Checkpoint | None = None, traj: Trajectory | None = None, *,
                  k: int = 2) -> Output:
        seen.update(a=a, b=b, traj=traj, k=k)
        return Output(scalars={"k": float(k)})

    assert unpacking.name == "unpacking"
    fake = [_Fake(3, 30), _Fake(1, 10), _Fake(2, 20)]
    inputs: typing.Any = {"a": [fake[0]], "traj": fake}
    out = unpacking.run(None, inputs, parse_params(unpacking, {"k": "4"}))  # type: ignore[arg-type]
    assert out.scalars == {"k": 4.0}
    assert seen["a"] is fake[0] and seen["b"] is None and seen["k"] == 4
    assert isinstance(seen["traj"], Trajectory) and [c.step for c in seen["traj"]] == [10, 20, 30]  # type: ignore[attr-defined]
    with pytest.raises(BadInput, match="slot 'a' takes exactly one checkpoint, got 2"):
        unpacking.run(None, {"a": fake[:2]}, unpacking.params())  # type: ignore[arg-type, dict-item]
    assert "unpacking" in [s.name for s in globals()["__lsdb_analyses__"]]


@dataclasses.dataclass
class _Fake:
    id: int
    step: int


def test_a_bad_signature_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="input 'x' must be annotated Checkpoint"):

        @analysis("bad-one")
        def bad_one(ctx: Context, x: int) -> Output:
            return Output()

    with pytest.raises(TypeError, match="optional input 'x' must default to None"):

        @analysis("bad-two")
        def bad_two(ctx: Context, x: Checkpoint | None) -> Output:
            return Output()


def test_renderer_is_recorded_in_its_module() -> None:
    @renderer(sig_demo, name="custom")
    def draw(view: ResultView) -> Figure:
        return Figure()

    assert ("sig-demo", "custom", draw) in globals()["__lsdb_renderers__"]


def _plugins_json(extra: str) -> dict[str, dict[str, object]]:
    """`lsdb plugins --format json` in a fresh process with `extra` in LSDB_EXTRA_PLUGINS, by plugin name."""
    import json
    import os
    import subprocess

    env = {**os.environ, "LSDB_EXTRA_PLUGINS": extra}
    env.pop("LSDB_STRICT_PLUGINS", None)
    out = subprocess.run([sys.executable, "-m", "lsdb.cli.app", "plugins", "--format", "json"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return {str(p["plugin"]): p for p in json.loads(out.stdout)}


def test_a_declared_plugin_runs_end_to_end(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from lsdb.analyses.exporting import plot_result
    from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

    module = "tests.plugin_system.declared"
    with temp_catalog(tmp_path, plugins=[module]) as catalog:
        a = add_model_checkpoint(catalog, "r", "mlp:widths=[8]", "digits", seed=0, step=0)
        b = add_model_checkpoint(catalog, "r", "mlp:widths=[8]", "digits", seed=1, step=1)
        c = add_model_checkpoint(catalog, "r", "mlp:widths=[8]", "digits", seed=2, step=2)
        result = run_inline(catalog, "declared-distance", [f"start={a.id}", f"others={b.id}", f"others={c.id}"],
                            {"scale": "2"})
        states = [load_file(str(catalog.objects.path(x.blob_digest))) for x in (a, b, c)]
        want = []
        for s in states[1:]:
            squared = sum((s[k].double() - v.double()).pow(2).sum() for k, v in states[0].items())
            want.append(2 * float(squared) ** 0.5)
        assert np.isclose(result.scalars["max_distance"], max(want))
        assert result.plugin_name == module
        out = plot_result(catalog, result.id, "bars", tmp_path / "bars.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_declared_plugin_is_attributed_to_its_own_name() -> None:
    module = "tests.plugin_system.declared"
    rows = _plugins_json(module)
    assert rows[module]["analyses"] == ["declared-distance"] and rows[module]["error"] is None
    assert {"register_analyses", "register_renderers"} <= set(rows[module]["hooks"])  # type: ignore[call-overload]
    assert not any(name.endswith("+declared") for name in rows)


def test_a_declared_duplicate_is_reported_against_its_plugin() -> None:
    module = "tests.plugin_system.declared_duplicate"
    rows = _plugins_json(module)
    assert rows[module]["error"] == f"plugin {module}: analysis 'surface' is already registered by lsdb_surfaces"
    assert rows[module]["analyses"] == []
    assert rows["lsdb_surfaces"]["analyses"] == ["interpolate", "surface", "trajectory"]


# --- the families use only the public plugin API ------------------------------------------------

FAMILY_ROOTS = sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("lsdb_"))
ALLOWED_LSDB = ("lsdb.plugin", "lsdb.landscape", "lsdb.plotting")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            assert node.module is not None
            if node.module == "lsdb":  # `from lsdb import plugin`: judge what is imported
                found += [f"lsdb.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return found


def _allowed(target: str, family: str) -> bool:
    top = target.split(".")[0]
    if top == family:
        return True
    if top == "lsdb":
        return any(target == a or target.startswith(a + ".") for a in ALLOWED_LSDB)
    if top.startswith("lsdb_"):
        return False  # another family
    return True  # the standard library and third-party packages


def test_the_family_list_is_complete() -> None:
    assert {p.name for p in FAMILY_ROOTS} >= {"lsdb_surfaces", "lsdb_connectivity", "lsdb_curvature", "lsdb_structure"}


@pytest.mark.parametrize("family", FAMILY_ROOTS, ids=lambda p: p.name)
def test_families_import_only_the_public_plugin_api(family: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}: {target}"
        for path in sorted(family.rglob("*.py"))
        for target in _imports(path)
        if not _allowed(target, family.name)
    ]
    assert not bad, "family modules import lsdb internals or another family:\n" + "\n".join(bad)


def test_the_import_rule_catches_violations(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from lsdb_surfaces.surface import SURFACE\nfrom lsdb.analyses import Context\n"
                     "import lsdb.errors\nfrom lsdb.plugin import single\nfrom lsdb.landscape.hvp import x\n")
    verdicts = {t: _allowed(t, "lsdb_curvature") for t in _imports(probe)}
    assert verdicts == {"lsdb_surfaces.surface": False, "lsdb.analyses": False, "lsdb.errors": False,
                        "lsdb.plugin": True, "lsdb.landscape.hvp": True}


def test_the_example_plugin_imports_only_lsdb_plugin() -> None:
    path = ROOT / "plugins" / "lsdb-layernorms" / "lsdb_layernorms" / "plugin.py"
    lsdb_targets = {t for t in _imports(path) if t.split(".")[0] == "lsdb"}
    assert lsdb_targets == {"lsdb.plugin"}
    assert "Any" not in path.read_text()


def test_lsdb_landscape_imports_nothing_else_from_lsdb() -> None:
    for path in sorted((ROOT / "lsdb" / "landscape").rglob("*.py")):
        outside = [t for t in _imports(path) if t.split(".")[0] == "lsdb" and not t.startswith("lsdb.landscape")]
        assert not outside, f"{path.relative_to(ROOT)} imports {outside}"


def test_the_plugin_module_exports_the_contract() -> None:
    import lsdb.plugin as contract

    for name in ("hookimpl", "AnalysisSpec", "Slot", "AnalysisOutput", "NewCheckpointOutput", "Context",
                 "InputCheckpoint", "Cancelled", "ResultView", "BadInput", "Checkpoint", "Output", "single",
                 "by_step", "finite_scalars", "accuracy_of", "SPLITS", "BN_MODES", "analysis", "renderer"):
        assert name in contract.__all__ and hasattr(contract, name), name
    assert contract.Checkpoint is contract.InputCheckpoint and contract.Output is contract.AnalysisOutput
    assert contract.finite_scalars({"a": 1, "b": float("nan"), "c": None, "d": float("inf")}) == {"a": 1.0}
    assert "lsdb.plugin" in sys.modules
