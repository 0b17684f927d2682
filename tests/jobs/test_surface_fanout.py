"""A surface larger than the tile size fans out into tile jobs; the merged result equals inline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lsdb.analyses.runner import AnalysisRequest, load_view, run_analysis


def test_surface_tiles_merge_to_the_inline_result(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    net = build_model("mlp:widths=[16]", data.input_shape, data.num_classes, seed=0)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    ingested = cli("ingest", tmp_path / "m.pt", "--run", "m", "--model", "mlp:widths=[16]", "--dataset", "digits")
    assert ingested.exit_code == 0
    params = {"xnum": "9", "ynum": "7"}
    queued = cli("run", "surface", "m:last", "-p", "xnum=9", "-p", "ynum=7", "--tile-size", "20", "--format", "json")
    assert queued.exit_code == 0, queued.stderr
    worker = cli("worker", "--device", "cpu", "--idle-exit", "1", "--poll", "0.2", "--inprocess")
    assert worker.exit_code == 0, worker.stderr
    jobs = json.loads(cli("jobs", "list", "--format", "json").stdout)
    assert len(jobs) == 1 + 4  # the parent and one tile per 2 rows of 9 points (7 rows)
    assert all(j["status"] == "succeeded" for j in jobs), jobs
    merged = [r for r in catalog.results.list(analysis="surface") if not r.params.get("rows")]
    assert len(merged) == 1
    tiled = load_view(catalog, merged[0])
    # the same request inline, recomputed from scratch
    inline, _ = run_analysis(catalog, AnalysisRequest("surface", ["m:last"], params), device="cpu", force=True)
    direct = load_view(catalog, inline)
    # bit for bit: the grid is evaluated line by line, each line chunked the same way in a tile and
    # in the whole grid (this small model is evaluated with the batched strategy)
    np.testing.assert_array_equal(tiled.arrays["loss"], direct.arrays["loss"])
    np.testing.assert_array_equal(tiled.arrays["acc"], direct.arrays["acc"])
    for key in ("center_loss", "min_loss", "max_loss", "convexity", "sharpness"):
        assert tiled.scalars[key] == direct.scalars[key], key


def test_a_fanned_out_surface_along_hessian_eigenvectors_equals_the_inline_one(cli, catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every tile recomputes the eigenvectors (seeded Lanczos from the gradient): the same on one machine."""
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    net = build_model("mlp:widths=[8]", data.input_shape, data.num_classes, seed=1)
    torch.save(net.state_dict(), tmp_path / "h.pt")
    ingested = cli("ingest", tmp_path / "h.pt", "--run", "h", "--model", "mlp:widths=[8]", "--dataset", "digits")
    assert ingested.exit_code == 0
    args = ["-p", "directions=hessian", "-p", "xnum=5", "-p", "ynum=6", "-p", "subset=300"]
    queued = cli("run", "surface", "h:last", *args, "--tile-size", "10", "--format", "json")
    assert queued.exit_code == 0, queued.stderr
    worker = cli("worker", "--device", "cpu", "--idle-exit", "1", "--poll", "0.2", "--inprocess")
    assert worker.exit_code == 0, worker.stderr
    merged = [r for r in catalog.results.list(analysis="surface") if not r.params.get("rows")]
    assert len(merged) == 1
    tiled = load_view(catalog, merged[0])
    params = {"directions": "hessian", "xnum": "5", "ynum": "6", "subset": "300"}
    inline, _ = run_analysis(catalog, AnalysisRequest("surface", ["h:last"], params), device="cpu", force=True)
    direct = load_view(catalog, inline)
    np.testing.assert_array_equal(tiled.arrays["loss"], direct.arrays["loss"])
    assert tiled.scalars["eigenvalue_1"] == direct.scalars["eigenvalue_1"] > direct.scalars["eigenvalue_2"]
