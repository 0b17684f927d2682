"""Getting results out of a `ResultView`: export to npz/csv/json, and figures from registered renderers.

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

EXPORT_FORMATS = ("npz", "csv", "json")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def export_result(catalog: CatalogDB, result_id: int, fmt: str, output: Path | None = None) -> Path:
    """`export_view` of a stored result."""
    from lsdb.analyses.runner import load_view

    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    return export_view(load_view(catalog, catalog.results.get(result_id)), fmt, output)


def export_view(view: ResultView, fmt: str, output: Path | None = None) -> Path:
    """Write a result's arrays and scalars to `output` (npz: arrays + scalars; csv: long form
    ``array,index,value`` plus ``scalar:KEY`` rows; json: everything)."""
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
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
