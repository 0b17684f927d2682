"""Getting results out of a `ResultView`: export to npz/csv/json/vtk/html, and figures from registered renderers.

``vtk`` writes VTK XML for ParaView: a structured grid ``.vts`` for a 2D landscape (plus a
``-path.vtp`` beside it when the result has a trajectory or a curve) and a poly-line ``.vtp`` for
1D curves. ``html`` writes one self-contained page with plotly.js inlined (from the ``plotly``
package): no network is needed to open it.

The view-level functions (`export_view`, `render`, `save_figure`) touch no database; the service
layer hands them a view it loaded. `export_result`/`plot_result` are the same by result id.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lsdb.errors import BadInput

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lsdb.analyses.view import ResultView
    from lsdb.catalog import CatalogDB

EXPORT_FORMATS = ("npz", "csv", "json", "vtk", "html")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def export_result(catalog: CatalogDB, result_id: int, fmt: str, output: Path | None = None) -> Path:
    """`export_view` of a stored result."""
    from lsdb.analyses.runner import load_view

    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    return export_view(load_view(catalog, catalog.results.get(result_id)), fmt, output)


def export_view(view: ResultView, fmt: str, output: Path | None = None, *,
                figure: dict[str, Any] | None = None) -> Path:
    """Write a result's arrays and scalars to `output` (npz: arrays + scalars; csv: long form
    ``array,index,value`` plus ``scalar:KEY`` rows; json: everything; vtk: ``.vts``/``.vtp`` for
    ParaView; html: an interactive page drawing `figure`, a plotly figure, or a generic one)."""
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    if fmt == "vtk":
        return _write_vtk(view, output)
    if fmt == "html":
        return _write_html(view, output, figure)
    path = Path(output or f"result-{view.id}.{fmt}")
    if fmt == "npz":
        # Any values: the names come from data, so mypy cannot rule out one being `allow_pickle`
        arrays: dict[str, Any] = view.arrays
        scalars: dict[str, Any] = {f"scalar__{k}": np.asarray(v) for k, v in view.scalars.items()}
        np.savez(path, **arrays, **scalars)
        if not str(path).endswith(".npz"):
            Path(str(path) + ".npz").replace(path)
    elif fmt == "json":
        doc = {
            "id": view.id,
            "analysis": view.analysis,
            "params": view.params,
            "scalars": view.scalars,
            "inputs": view.inputs,
            "arrays": {k: _jsonable(v) for k, v in view.arrays.items()},
        }
        path.write_text(json.dumps(doc, indent=1, default=str))
    else:
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["array", "index", "value"])
            for name, arr in view.arrays.items():
                flat = np.asarray(arr)
                for idx in np.ndindex(flat.shape or (1,)):
                    value = flat[idx] if flat.shape else flat.item()
                    writer.writerow([name, ";".join(map(str, idx)), _cell(value)])
            for key, value in view.scalars.items():
                writer.writerow([f"scalar:{key}", "", value])
    return path


# -- VTK XML (ParaView) ------------------------------------------------------------------------------
def _grid_arrays(view: ResultView) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None:
    """(x, y, {name: (ny, nx) array}) of a 2D landscape, or None when the result has no grid."""
    a = view.arrays
    if "x" not in a or "y" not in a:
        return None
    x, y = np.asarray(a["x"], dtype=float).ravel(), np.asarray(a["y"], dtype=float).ravel()
    if "row_index" in a and "col_index" in a:  # a sub-grid (eigenmap): the indexed rows and columns
        y, x = y[np.asarray(a["row_index"], dtype=int)], x[np.asarray(a["col_index"], dtype=int)]
    fields = {k: np.asarray(v, dtype=float) for k, v in a.items()
              if np.shape(v) == (len(y), len(x)) and np.asarray(v).dtype.kind in "fiu"}
    return (x, y, fields) if fields else None


def _main_field(fields: Mapping[str, np.ndarray]) -> str:
    return next((k for k in ("loss", "train_loss", "test_loss", "ratio") if k in fields), sorted(fields)[0])


def _vtk_numbers(values: np.ndarray) -> str:
    return " ".join(repr(float(v)) if np.isfinite(v) else "nan" for v in np.asarray(values, dtype=float).ravel())


def _vtk_data_array(name: str, values: np.ndarray) -> str:
    return (f'<DataArray type="Float64" Name="{_xml_attr(name)}" format="ascii">{_vtk_numbers(values)}'
            "</DataArray>")


def _xml_attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _vtk_file(kind: str, body: str) -> str:
    return (f'<?xml version="1.0"?>\n<VTKFile type="{kind}" version="1.0" byte_order="LittleEndian">\n'
            f"{body}\n</VTKFile>\n")


def vts_text(x: np.ndarray, y: np.ndarray, fields: Mapping[str, np.ndarray], height: str) -> str:
    """A VTK XML structured grid: points (x, y, fields[height]), x fastest; every field as point data."""
    nx, ny = len(x), len(y)
    gx, gy = np.meshgrid(x, y)
    z = np.nan_to_num(np.asarray(fields[height], dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    points = np.stack([gx.ravel(), gy.ravel(), z.ravel()], axis=1)
    extent = f"0 {nx - 1} 0 {ny - 1} 0 0"
    data = "".join(_vtk_data_array(k, v) for k, v in fields.items())
    body = (f'<StructuredGrid WholeExtent="{extent}"><Piece Extent="{extent}">'
            f'<PointData Scalars="{_xml_attr(height)}">{data}</PointData>'
            f'<Points><DataArray type="Float64" NumberOfComponents="3" format="ascii">{_vtk_numbers(points)}'
            "</DataArray></Points></Piece></StructuredGrid>")
    return _vtk_file("StructuredGrid", body)


def vtp_text(points: np.ndarray, fields: Mapping[str, np.ndarray]) -> str:
    """A VTK XML poly data of one poly-line through `points` (n, 3), with `fields` as point data."""
    n = len(points)
    data = "".join(_vtk_data_array(k, v) for k, v in fields.items())
    body = (f'<PolyData><Piece NumberOfPoints="{n}" NumberOfVerts="0" NumberOfLines="{1 if n else 0}" '
            f'NumberOfStrips="0" NumberOfPolys="0"><PointData>{data}</PointData>'
            f'<Points><DataArray type="Float64" NumberOfComponents="3" format="ascii">{_vtk_numbers(points)}'
            '</DataArray></Points><Lines><DataArray type="Int64" Name="connectivity" format="ascii">'
            f'{" ".join(map(str, range(n)))}</DataArray><DataArray type="Int64" Name="offsets" format="ascii">'
            f"{n if n else ''}</DataArray></Lines></Piece></PolyData>")
    return _vtk_file("PolyData", body)


def _path_points(view: ResultView) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """A trajectory's or curve's points in the plane (z: its loss when stored), or None."""
    a = view.arrays
    if "coords" in a and np.asarray(a["coords"]).ndim == 2:
        xy = np.asarray(a["coords"], dtype=float)[:, :2]
    elif "path_x" in a and "path_y" in a:
        xy = np.stack([np.asarray(a["path_x"], float), np.asarray(a["path_y"], float)], axis=1)
    elif "curve_x" in a and "curve_y" in a:
        xy = np.stack([np.asarray(a["curve_x"], float), np.asarray(a["curve_y"], float)], axis=1)
    else:
        return None
    n = len(xy)
    fields = {k: np.asarray(v, dtype=float) for k, v in a.items()
              if k.startswith("path_") and np.asarray(v).shape == (n,) and k not in ("path_x", "path_y")}
    if "steps" in a and np.asarray(a["steps"]).shape == (n,):
        fields["step"] = np.asarray(a["steps"], dtype=float)
    z = fields.get("path_loss", np.zeros(n))
    return np.column_stack([xy, np.nan_to_num(z)]), fields


def _curve_points(view: ResultView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """1D results: the first 1D array is the abscissa; z is 0, y the main loss curve."""
    a = {k: np.asarray(v) for k, v in view.arrays.items()}
    ones = [k for k, v in a.items() if v.ndim == 1 and v.dtype.kind in "fiu" and len(v) > 0]
    xkey = next((k for k in ("alpha", "t", "x") if k in ones), ones[0] if ones else None)
    if xkey is None:
        raise BadInput(f"result {view.id} ({view.analysis}) has no grid or curve to export as VTK")
    n = len(a[xkey])
    fields = {k: a[k].astype(float) for k in ones if len(a[k]) == n}
    ykey = next((k for k in fields if k.endswith("loss") and k != xkey), None)
    y = fields[ykey] if ykey else np.zeros(n)
    return np.column_stack([fields[xkey], np.nan_to_num(y), np.zeros(n)]), fields


def _write_vtk(view: ResultView, output: Path | None) -> Path:
    grid = _grid_arrays(view)
    if grid is not None:
        x, y, fields = grid
        path = Path(output or f"result-{view.id}.vts")
        path.write_text(vts_text(x, y, fields, _main_field(fields)))
        traj = _path_points(view)
        if traj is not None:
            path.with_name(path.stem + "-path.vtp").write_text(vtp_text(*traj))
        return path
    points, fields = _curve_points(view)
    path = Path(output or f"result-{view.id}.vtp")
    path.write_text(vtp_text(points, fields))
    return path


# -- one self-contained interactive page ------------------------------------------------------------
def plotly_js() -> str:
    """plotly.js as shipped by the ``plotly`` package (never from a CDN); `BadInput` when it is missing."""
    from importlib import resources

    try:
        return resources.files("plotly").joinpath("package_data/plotly.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise BadInput("the html export needs the 'plotly' package (pip install 'lsdb[ui]')") from None


def generic_figure(view: ResultView) -> dict[str, Any]:
    """A plotly figure of any result: a 3D surface for a 2D grid, else its 1D arrays against the first."""
    grid = _grid_arrays(view)
    if grid is not None:
        x, y, fields = grid
        main = _main_field(fields)
        data: list[dict[str, Any]] = [{"type": "surface", "x": _jsonable(x), "y": _jsonable(y),
                                       "z": _jsonable(fields[main]), "colorscale": "Viridis", "name": main}]
        layout: dict[str, Any] = {"scene": {"zaxis": {"title": {"text": main}}}, "height": 600}
    else:
        points, fields = _curve_points(view)
        xs = _jsonable(points[:, 0])
        data = [{"type": "scatter", "mode": "lines+markers", "x": xs, "y": _jsonable(v), "name": k}
                for k, v in fields.items() if not np.array_equal(v, points[:, 0])]
        layout = {"height": 520}
    layout["title"] = {"text": view.title}
    return {"data": data, "layout": layout}


def html_document(figure: Mapping[str, Any], title: str, details: Mapping[str, Any] | None = None) -> str:
    """One HTML page that draws `figure` with plotly.js inlined (opens offline), plus a `details` table."""
    import html

    payload = json.dumps(figure, default=_json_default, allow_nan=False).replace("</", "<\\/")
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (details or {}).items())
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>"
        f"<script>{plotly_js()}</script></head><body><h1>{html.escape(title)}</h1>"
        '<div id="figure" class="lsdb-figure" style="width:100%;min-height:520px"></div>'
        f"<table>{rows}</table>"
        f'<script type="application/json" id="figure-data">{payload}</script>'
        "<script>const f=JSON.parse(document.getElementById('figure-data').textContent);"
        "Plotly.newPlot('figure',f.data,f.layout,{responsive:true}).then(function(){"
        "document.body.setAttribute('data-rendered','1');});</script></body></html>\n"
    )


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return _jsonable(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _write_html(view: ResultView, output: Path | None, figure: Mapping[str, Any] | None) -> Path:
    path = Path(output or f"result-{view.id}.html")
    details: dict[str, Any] = {"analysis": view.analysis, **{f"param {k}": v for k, v in view.params.items()},
                               **{f"scalar {k}": v for k, v in view.scalars.items()}}
    fig = _finite_json(figure if figure is not None else generic_figure(view))
    path.write_text(html_document(fig, view.title, details), encoding="utf-8")
    return path


def _finite_json(obj: Any) -> Any:
    """`obj` with NaN/inf floats as None, so the page's JSON is valid."""
    if isinstance(obj, Mapping):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite_json(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def _cell(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _jsonable(arr: np.ndarray) -> object:
    arr = np.asarray(arr)
    if arr.dtype.kind == "f":
        return (
            [None if not np.isfinite(v) else float(v) for v in arr.ravel()]
            if arr.ndim <= 1
            else np.where(np.isfinite(arr), arr, np.nan).tolist()
        )
    return arr.tolist()


def plot_result(catalog: CatalogDB, result_id: int, kind: str = "default", output: Path | None = None) -> Path:
    """Render a stored result with its analysis' renderer `kind` and save it (png, svg or pdf)."""
    from lsdb.analyses.runner import load_view
    from lsdb.plugins import default_registries

    result = catalog.results.get(result_id)
    mine = default_registries().renderers.kinds(result.analysis)
    path = check_plot_path(Path(output or f"result-{result_id}-{kind}.png"))
    return save_figure(render(load_view(catalog, result), mine, kind), path)


def render(view: ResultView, renderers: Mapping[str, Callable[[ResultView], Figure]], kind: str = "default") -> Figure:
    """The figure renderer `kind` (one of the analysis' `renderers`, by name) draws of `view`."""
    if not renderers:
        raise BadInput(
            f"no renderer is registered for analysis '{view.analysis}'; export the data instead "
            f"(`lsdb results export {view.id}`)"
        )
    if kind not in renderers:
        available = ", ".join(sorted(renderers))
        raise BadInput(f"analysis '{view.analysis}' has no renderer '{kind}'; available: {available}")
    return renderers[kind](view)


def check_plot_path(path: Path) -> Path:
    """`path` if its suffix is one matplotlib is asked to write here; `BadInput` otherwise."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise BadInput(f"{path}: plots are saved as {', '.join(PLOT_SUFFIXES)}")
    return path


def save_figure(fig: Figure, path: Path) -> Path:
    """Save `fig` as png, svg or pdf (by the suffix), creating the folder."""
    check_plot_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path
