"""`--format vtk` (VTK XML for ParaView) and `--format html` (one self-contained page) exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ui.conftest import Built


def _read_vtk(path: Path) -> Any:
    vtk = pytest.importorskip("vtk", reason="the VTK round-trip tests need the vtk package (pip install vtk)")
    reader = vtk.vtkXMLStructuredGridReader() if path.suffix == ".vts" else vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


def _array(data: Any, name: str) -> np.ndarray:
    from vtk.util.numpy_support import vtk_to_numpy

    found = data.GetPointData().GetArray(name)
    assert found is not None, name
    return vtk_to_numpy(found)


def test_surface_vts_round_trips_grid_and_values(ui_catalog: Any, built: Built, tmp_path: Path) -> None:
    result = ui_catalog.result(built.ids["surface"])
    path = result.export("vtk", tmp_path / "surface.vts")
    grid = _read_vtk(path)
    a = result.arrays
    nx, ny = len(a["x"]), len(a["y"])
    dims = [0, 0, 0]
    grid.GetDimensions(dims)
    assert dims == [nx, ny, 1]
    np.testing.assert_allclose(_array(grid, "loss").reshape(ny, nx), a["loss"], rtol=1e-12)
    np.testing.assert_allclose(_array(grid, "acc").reshape(ny, nx), a["acc"], rtol=1e-12)
    points = np.array([grid.GetPoint(i) for i in range(grid.GetNumberOfPoints())]).reshape(ny, nx, 3)
    np.testing.assert_allclose(points[0, :, 0], a["x"])
    np.testing.assert_allclose(points[:, 0, 1], a["y"])
    np.testing.assert_allclose(points[:, :, 2], a["loss"])  # the height is the loss: a landscape in ParaView


def test_curves_export_as_vtp(ui_catalog: Any, built: Built, tmp_path: Path) -> None:
    result = ui_catalog.result(built.ids["interpolate"])
    path = result.export("vtk", tmp_path / "interp.vtp")
    poly = _read_vtk(path)
    alpha = result.arrays["alpha"]
    assert poly.GetNumberOfPoints() == len(alpha) and poly.GetNumberOfLines() == 1
    np.testing.assert_allclose(_array(poly, "train_loss"), result.arrays["train_loss"])
    np.testing.assert_allclose(_array(poly, "alpha"), alpha)


def test_trajectory_exports_grid_and_path(ui_catalog: Any, tmp_path: Path) -> None:
    result = ui_catalog.run("trajectory", "r", xnum=4, ynum=4, device="cpu")
    path = result.export("vtk", tmp_path / "traj.vts")
    assert _read_vtk(path).GetNumberOfPoints() == 16
    traj = _read_vtk(tmp_path / "traj-path.vtp")
    assert traj.GetNumberOfPoints() == len(result.arrays["coords"])


def test_html_export_is_self_contained(ui_catalog: Any, built: Built, tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    path = ui_catalog.result(built.ids["surface"]).export("html", tmp_path / "s.html")
    text = path.read_text()
    assert "Plotly.newPlot" in text and '"type": "surface"' in text
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js is inlined: nothing to fetch
    assert "cdn." not in text.split("<script>", 2)[-1][:2000]


def test_export_formats_from_the_cli(cli_for: Any, built: Built, tmp_path: Path) -> None:
    for fmt, suffix in (("vtk", ".vts"), ("html", ".html")):
        out = tmp_path / f"r{suffix}"
        res = cli_for("results", "export", str(built.ids["surface"]), "--format", fmt, "--output", str(out))
        assert res.exit_code == 0, res.stderr
        assert out.exists() and out.stat().st_size > 0
    res = cli_for("results", "export", str(built.ids["surface"]), "--format", "nope")
    assert res.exit_code != 0 and "vtk" in res.stderr


@pytest.fixture
def cli_for(built: Built) -> Any:
    from tests.conftest import Cli

    return Cli(built.url, built.store)
