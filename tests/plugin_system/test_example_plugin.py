"""The stand-alone example plugin, installed, is found through its entry point and runs."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
import torch


def _installed() -> bool:
    return any(ep.name == "layernorms" for ep in metadata.entry_points(group="lsdb"))


pytestmark = pytest.mark.skipif(not _installed(), reason="pip install -e plugins/lsdb-layernorms (make install does)")


def test_found_through_its_entry_point(cli) -> None:  # type: ignore[no-untyped-def]
    plugins = {p["plugin"]: p for p in json.loads(cli("plugins", "--format", "json").stdout)}
    assert plugins["layernorms"]["source"] == "entry point"
    assert plugins["layernorms"]["analyses"] == ["layer-norms"]
    assert plugins["layernorms"]["version"] == "0.1.0"


def test_its_analysis_runs_from_the_cli(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net = torch.nn.Linear(3, 2)
    torch.save(net.state_dict(), tmp_path / "a.pt")
    cli("ingest", tmp_path / "a.pt", "--run", "r")
    r = cli("run", "layer-norms", "r:last", "--inline", "--format", "json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    want = torch.sqrt(net.weight.detach().double().pow(2).sum() + net.bias.detach().double().pow(2).sum()).item()
    assert abs(res["scalars"]["total_norm"] - want) < 1e-6
    assert res["plugin_name"] == "layernorms" and res["plugin_version"] == "0.1.0"
    out = tmp_path / "p.svg"
    assert cli("plot", str(res["id"]), "-o", out).exit_code == 0
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
