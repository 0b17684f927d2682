"""Getting results out: export to npz/csv/json, and plotting through registered renderers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from lsdb.catalog import CatalogDB
from lsdb.errors import BadInput

EXPORT_FORMATS = ("npz", "csv", "json")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def export_result(catalog: CatalogDB, result_id: int, fmt: str, output: Path | None = None) -> Path:
    """Write a result's arrays and scalars to `output` (npz: arrays + scalars; csv: one column
    per 1-D array of the common length, or long form ``array,index...,value``; json: everything)."""
    from lsdb.analyses.runner import load_view

    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"unknown export format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    view = load_view(catalog, catalog.results.get(result_id))
    path = Path(output or f"result-{result_id}.{fmt}")
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
    """Render a result with its analysis' renderer `kind` and save it (png, svg or pdf)."""
    from lsdb.analyses.runner import load_view
    from lsdb.plugins import get_plugins

    result = catalog.results.get(result_id)
    renderers = get_plugins().renderers()
    available = sorted(name for (analysis, name) in renderers if analysis == result.analysis)
    if not available:
        raise BadInput(
            f"no renderer is registered for analysis '{result.analysis}'; export the data instead "
            f"(`lsdb results export {result_id}`)"
        )
    if (result.analysis, kind) not in renderers:
        raise BadInput(f"analysis '{result.analysis}' has no renderer '{kind}'; available: {', '.join(available)}")
    path = Path(output or f"result-{result_id}-{kind}.png")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise BadInput(f"{path}: plots are saved as {', '.join(PLOT_SUFFIXES)}")
    view = load_view(catalog, result)
    fig = renderers[(result.analysis, kind)](view)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path
