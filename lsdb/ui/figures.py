"""Which figure a page shows: a plugin's interactive view, else a built-in one (`lsdb.ui.views`), else
the analysis' PNG renderer. Also the Run page's metric charts and the Compare page's overlays."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lsdb.errors import BadInput
from lsdb.service import Catalog, Result
from lsdb.ui.views import COLORS, OVERLAY, builtin_views, jsonable

#: how many results a Compare figure draws at most (the table itself is paged)
MAX_COMPARED = 12


def interactive_views(catalog: Catalog, analysis: str) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """The interactive views of `analysis` by name, ``default`` first: plugins' over the built-in ones."""
    views = {**builtin_views(analysis), **catalog.interactive_renderers(analysis)}
    return dict(sorted(views.items(), key=lambda kv: (kv[0] != "default", kv[0])))


def result_figure(catalog: Catalog, result: Result, kind: str) -> dict[str, Any]:
    """The plotly figure view `kind` of `result`; `BadInput` naming the available ones otherwise."""
    views = interactive_views(catalog, result.analysis)
    if kind not in views:
        raise BadInput(f"analysis '{result.analysis}' has no interactive view '{kind}'; "
                       f"available: {', '.join(views) or 'none'}")
    return views[kind](result.view)


def png_bytes(result: Result, kind: str) -> bytes:
    """The analysis' matplotlib renderer `kind` as PNG bytes (the fallback view)."""
    fig = result.plot(kind)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def metrics_figure(metrics: Sequence[Any]) -> dict[str, Any]:
    """A run's metrics over steps: one line per key (losses on the left axis, the rest on the right)."""
    by_key: dict[str, tuple[list[int], list[float]]] = {}
    for m in metrics:
        steps, values = by_key.setdefault(m.key, ([], []))
        steps.append(int(m.step))
        values.append(float(m.value))
    data = []
    for k, (key, (steps, values)) in enumerate(sorted(by_key.items())):
        data.append({"type": "scatter", "mode": "lines+markers", "x": steps, "y": jsonable(np.asarray(values)),
                     "name": key, "yaxis": "y" if "loss" in key else "y2", "marker": {"size": 4},
                     "line": {"color": COLORS[k % len(COLORS)]}})
    layout = {"xaxis": {"title": {"text": "step"}}, "yaxis": {"title": {"text": "loss"}},
              "yaxis2": {"title": {"text": "other metrics"}, "overlaying": "y", "side": "right"},
              "height": 380, "margin": {"l": 60, "r": 60, "t": 20, "b": 50}, "legend": {"orientation": "h"}}
    return {"data": data, "layout": layout}


def compare_figure(catalog: Catalog, result_ids: Sequence[int]) -> dict[str, Any]:
    """1D results overlaid on one chart; 2D results side by side as heat maps on one colour scale."""
    results = [catalog.result(i) for i in list(result_ids)[:MAX_COMPARED]]
    grids = [r for r in results if {"x", "y", "loss"} <= set(r.view.arrays) and np.ndim(r.view.arrays["loss"]) == 2]
    if grids:
        return _side_by_side(grids)
    data = []
    for k, r in enumerate(results):
        keys = OVERLAY.get(r.analysis)
        arrays = r.view.arrays
        if keys is None or keys[0] not in arrays or keys[1] not in arrays:
            continue
        data.append({"type": "scatter", "mode": "lines+markers", "x": jsonable(arrays[keys[0]]),
                     "y": jsonable(arrays[keys[1]]), "name": f"#{r.id} " + ", ".join(sorted({i.run for i in r.inputs})),
                     "line": {"color": COLORS[k % len(COLORS)]}, "marker": {"size": 4}})
    x_title, y_title = OVERLAY.get(results[0].analysis, ("x", "y")) if results else ("x", "y")
    return {"data": data, "layout": {"xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}},
                                     "height": 440, "margin": {"l": 60, "r": 20, "t": 30, "b": 50}}}


def _side_by_side(results: Sequence[Result]) -> dict[str, Any]:
    zs = [np.asarray(r.view.arrays["loss"], float) for r in results]
    finite = np.concatenate([z[np.isfinite(z)] for z in zs]) if zs else np.zeros(1)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    n = len(results)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": 330 * rows, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
                              "coloraxis": {"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                                            "colorbar": {"title": {"text": "loss"}}}, "annotations": []}
    for k, r in enumerate(results):
        row, col = divmod(k, cols)
        suffix = "" if k == 0 else str(k + 1)
        gap = 0.06
        x0, x1 = col / cols + gap / 2, (col + 1) / cols - gap / 2
        y1, y0 = 1 - row / rows - gap, 1 - (row + 1) / rows + gap / 2
        layout[f"xaxis{suffix}"] = {"domain": [x0, x1], "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"domain": [y0, y1], "anchor": f"x{suffix}"}
        a = r.view.arrays
        data.append({"type": "heatmap", "x": jsonable(a["x"]), "y": jsonable(a["y"]), "z": jsonable(zs[k]),
                     "coloraxis": "coloraxis", "xaxis": f"x{suffix}", "yaxis": f"y{suffix}", "name": f"#{r.id}"})
        title = f"#{r.id} " + ", ".join(sorted({i.run for i in r.inputs}))
        layout["annotations"].append({"text": title, "x": (x0 + x1) / 2, "y": y1, "xref": "paper", "yref": "paper",
                                      "showarrow": False, "yanchor": "bottom"})
    return {"data": data, "layout": layout}
