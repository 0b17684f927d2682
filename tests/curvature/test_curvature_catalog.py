"""Both analyses end to end through the catalog: run inline, cached, fanned out into tiles, plotted; and the
surface along the top two Hessian eigenvectors through `eigen_checkpoints`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsdb.analyses.exporting import plot_result
from lsdb.analyses.runner import AnalysisRequest, compute, load_view, prepare
from lsdb.jobs.executor import execute_job
from lsdb.jobs.submit import enqueue, resources_for
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog

PLUGIN = ["lsdb_curvature.plugin"]
MLP = "mlp:widths=[4]"


@pytest.mark.parametrize(
    ("analysis", "params", "kinds"),
    [
        ("hessian", {"k": "2", "subset": "40", "density": "true", "slq_steps": "20", "trace_probes": "20"},
         ["default", "density"]),
        ("eigenmap", {"xnum": "3", "ynum": "3", "subset": "40", "tol": "1e-3"},
         ["default", "ratio", "lambda_max", "lambda_min"]),
    ],
)
def test_analysis_runs_through_the_catalog_and_every_renderer_saves(
    tmp_path: Path, analysis: str, params: dict[str, str], kinds: list[str]
) -> None:
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        ckpt = add_model_checkpoint(catalog, "r", MLP, "digits", seed=0, step=0)
        result = run_inline(catalog, analysis, [ckpt.id], params)
        assert result.analysis == analysis and result.scalars["hvp_count"] > 0
        assert run_inline(catalog, analysis, [ckpt.id], params).id == result.id  # cached
        for kind in kinds:
            path = plot_result(catalog, result.id, kind, tmp_path / f"{analysis}-{kind}.png")
            assert path.read_bytes().startswith(b"\x89PNG")


def test_a_fanned_out_eigenmap_merges_into_the_inline_result(tmp_path: Path) -> None:
    params = {"xnum": "3", "ynum": "4", "subset": "30", "tol": "1e-6", "warm_start": "false"}
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        ckpt = add_model_checkpoint(catalog, "r", MLP, "digits", seed=0, step=0)
        out = enqueue(catalog, AnalysisRequest("eigenmap", [str(ckpt.id)], params), tile_size=6)
        assert out.created and out.tiles == 2
        while (job := catalog.jobs.claim("w", ["default"], resources_for("cpu"), 30)) is not None:
            outcome: dict[str, Any] = execute_job(catalog, {"id": job.id, "payload": job.payload}, job.fence, "cpu")
            assert outcome["outcome"] == "succeeded", outcome
        merged = load_view(catalog, catalog.results.get(catalog.jobs.get(out.job.id).result_id))
        request = AnalysisRequest("eigenmap", [str(ckpt.id)], params)
        whole, _, _ = compute(catalog, prepare(catalog, request), device="cpu")  # the untiled run, not stored
        for name in ("lambda_max", "lambda_min", "ratio", "loss"):
            np.testing.assert_array_equal(merged.arrays[name], whole.arrays[name])
        assert run_inline(catalog, "eigenmap", [ckpt.id], params).id == merged.id  # one cache key
        assert merged.arrays["ratio"].shape == (4, 3)


def test_the_surface_along_the_top_two_eigenvectors(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=PLUGIN) as catalog:
        ckpt = add_model_checkpoint(catalog, "r", MLP, "digits", seed=0, step=0)
        result = run_inline(catalog, "hessian", [ckpt.id], {"k": "2", "subset": "40", "trace": "false",
                                                            "eigen_checkpoints": "2", "eigen_scale": "0.5"})
        made = [c for c in catalog.checkpoints.list(run="r") if c.produced_by == result.id]
        assert len(made) == 2 and all(c.label.startswith("hessian eigenvector") for c in made)  # type: ignore[union-attr]
        surface = run_inline(catalog, "surface", [f"center={ckpt.id}", f"others={made[0].id}", f"others={made[1].id}"],
                             {"directions": "checkpoints", "xnum": "3", "ynum": "3", "subset": "40"})
        view = load_view(catalog, surface)
        np.testing.assert_allclose(view.arrays["direction_norms"], [0.5, 0.5], rtol=1e-5)
        assert view.scalars["direction_cosine"] == pytest.approx(0.0, abs=1e-5)  # eigenvectors are orthogonal
