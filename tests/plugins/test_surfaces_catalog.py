"""The three analyses end to end: resolved from the catalog, run by lsdb's runner, stored, and plotted."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsdb.analyses.exporting import plot_result
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

MLP = "mlp:widths=[8]"


@pytest.mark.parametrize(
    ("analysis", "inputs", "params", "kinds"),
    [
        ("interpolate", ["start=traj:0", "end=traj:2"], {"steps": "5"}, ["default"]),
        ("surface", ["center=traj:2"], {"xnum": "5", "ynum": "4"}, ["default", "filled", "3d"]),
        ("surface", ["center=traj:2", "others=traj:0"], {"directions": "checkpoints", "dims": "1"}, ["default"]),
        ("surface", ["center=traj:2", "trajectory=traj"], {"directions": "pca", "xnum": "3", "ynum": "3"}, ["default"]),
        ("trajectory", ["traj"], {"xnum": "4", "ynum": "3"}, ["default", "filled"]),
    ],
)
def test_analysis_runs_through_the_catalog_and_every_renderer_saves(
    tmp_path: Path, analysis: str, inputs: list[str], params: dict[str, str], kinds: list[str]
) -> None:
    with temp_catalog(tmp_path) as catalog:
        for step, seed in ((0, 0), (1, 1), (2, 2)):
            add_model_checkpoint(catalog, "traj", MLP, "digits", seed=seed, step=step)
        result = run_inline(catalog, analysis, inputs, params)
        assert result.analysis == analysis and result.scalars
        again = run_inline(catalog, analysis, inputs, params)
        assert again.id == result.id  # the same request is the same (cached) result
        for kind in kinds:
            path = plot_result(catalog, result.id, kind, tmp_path / f"{analysis}-{kind}.png")
            assert path.read_bytes().startswith(b"\x89PNG")
