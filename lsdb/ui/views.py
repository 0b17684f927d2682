"""Interactive (plotly JSON) views of the built-in analyses, keyed by analysis name.

Each view takes a result view (``.id``, ``.analysis``, ``.params``, ``.scalars``, ``.arrays``,
``.inputs``, ``.title``) and returns ``{"data": [...], "layout": {...}}``, plain JSON-ready
data that plotly.js draws. Plugins can bring their own through the
``register_interactive_renderers`` hook; those win over these, and an analysis with neither is
shown with its PNG renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Figure = dict[str, Any]
View = Callable[[Any], Figure]
#: the largest grid side drawn as is; larger grids are strided down (the page stays light)
MAX_SIDE = 201
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def jsonable(arr: Any) -> Any:
    """A NumPy array (or scalar) as nested lists with NaN/inf as None (JSON has no NaN)."""
    a = np.asarray(arr)
    if a.dtype.kind in "fc":
        a = a.astype(float)
        obj = a.tolist()
        if np.isfinite(a).all():
            return obj
        return _clean(obj)
    return a.tolist()


def _clean(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_clean(o) for o in obj]
    return obj if isinstance(obj, float) and math.isfinite(obj) else None


def _stride(n: int) -> int:
    return max(1, math.ceil(n / MAX_SIDE))


def _grid(view: Any, z_key: str = "loss") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = view.arrays
    x, y, z = np.asarray(a["x"], float), np.asarray(a["y"], float), np.asarray(a[z_key], float)
    sx, sy = _stride(len(x)), _stride(len(y))
    return x[::sx], y[::sy], z[::sy, ::sx]


def _layout(view: Any, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": view.title, "font": {"size": 14}}, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "hovermode": "closest", **extra}


def _axis_names(view: Any) -> tuple[str, str]:
    ratios = view.arrays.get("explained_variance_ratio")
    if ratios is not None and len(ratios) >= 2:
        return f"PC1 ({100 * float(ratios[0]):.1f} %)", f"PC2 ({100 * float(ratios[1]):.1f} %)"
    return "x (direction 1)", "y (direction 2)"


def _zlabel(view: Any) -> str:
    return f"{view.params.get('split', 'train')} loss"


def _path(view: Any) -> tuple[np.ndarray, np.ndarray] | None:
    a = view.arrays
    if "path_x" in a and "path_y" in a:
        return np.asarray(a["path_x"]), np.asarray(a["path_y"])
    if "coords" in a and np.asarray(a["coords"]).ndim == 2:
        coords = np.asarray(a["coords"])
        return coords[:, 0], coords[:, 1]
    if "curve_x" in a and "curve_y" in a:
        return np.asarray(a["curve_x"]), np.asarray(a["curve_y"])
    return None


def _marks(view: Any) -> list[tuple[float, float, str]]:
    a = view.arrays
    marks: list[tuple[float, float, str]] = []
    if "others_x" in a and "others_y" in a:
        names = [str(i.get("run", "")) + ":" + str(i.get("step", "")) for i in view.inputs if i.get("role") == "others"]
        for k, (x, y) in enumerate(zip(a["others_x"], a["others_y"], strict=False)):
            marks.append((float(x), float(y), names[k] if k < len(names) else f"d{k + 1}"))
    if "points_x" in a and "points_y" in a:
        labels = ("start", "bend", "end")
        for k, (x, y) in enumerate(zip(a["points_x"], a["points_y"], strict=False)):
            marks.append((float(x), float(y), labels[k] if k < 3 else f"p{k}"))
    return marks


def surface3d(view: Any, z_key: str = "loss") -> Figure:
    """The loss over the plane as a 3D surface (rotate, zoom, hover the value)."""
    x, y, z = _grid(view, z_key)
    xl, yl = _axis_names(view)
    data: list[dict[str, Any]] = [{
        "type": "surface", "x": jsonable(x), "y": jsonable(y), "z": jsonable(z), "colorscale": "Viridis",
        "colorbar": {"title": {"text": _zlabel(view)}}, "name": _zlabel(view),
    }]
    scene = {"xaxis": {"title": {"text": xl}}, "yaxis": {"title": {"text": yl}},
             "zaxis": {"title": {"text": _zlabel(view)}}, "camera": {"eye": {"x": 1.6, "y": -1.6, "z": 1.0}}}
    return {"data": data, "layout": _layout(view, scene=scene, height=560)}


def contour(view: Any, z_key: str = "loss") -> Figure:
    """Loss contours with the trajectory (or the curve) and the other inputs drawn on them."""
    x, y, z = _grid(view, z_key)
    xl, yl = _axis_names(view)
    data: list[dict[str, Any]] = [{
        "type": "contour", "x": jsonable(x), "y": jsonable(y), "z": jsonable(z), "colorscale": "Viridis",
        "ncontours": 25, "contours": {"coloring": "heatmap", "showlabels": True},
        "colorbar": {"title": {"text": z_key.replace("_", " ")}}, "name": z_key,
    }]
    path = _path(view)
    if path is not None:
        steps = view.arrays.get("steps")
        text = [f"step {int(s)}" for s in steps] if steps is not None else None
        data.append({"type": "scatter", "mode": "lines+markers", "x": jsonable(path[0]), "y": jsonable(path[1]),
                     "name": "trajectory" if "coords" in view.arrays or "path_x" in view.arrays else "curve",
                     "line": {"color": "#d62728"}, "marker": {"size": 5}, "text": text})
    marks = [(0.0, 0.0, "center")] if "points_x" not in view.arrays else []
    marks += _marks(view)
    if marks:
        data.append({"type": "scatter", "mode": "markers+text", "x": [m[0] for m in marks],
                     "y": [m[1] for m in marks], "text": [m[2] for m in marks], "textposition": "top center",
                     "marker": {"symbol": "star", "size": 12, "color": "white", "line": {"color": "black", "width": 1}},
                     "name": "inputs"})
    layout = _layout(view, xaxis={"title": {"text": xl}}, yaxis={"title": {"text": yl}}, height=520)
    return {"data": data, "layout": layout}


def curves(view: Any, x_key: str, series: Sequence[tuple[str, str, str]], x_title: str,
           marks: Sequence[tuple[float, str]] = ()) -> Figure:
    """Loss (top) and error in % (bottom) against `x_key`: `series` are (array, label, "loss"|"error"|"acc")."""
    a = view.arrays
    x = jsonable(a[x_key])
    data: list[dict[str, Any]] = []
    has_error = False
    for k, (key, label, kind) in enumerate(series):
        if key not in a:
            continue
        values = np.asarray(a[key], float)
        if kind == "acc":
            values = 100 * (1 - values)
        elif kind == "error":
            values = 100 * values
        lower = kind in ("acc", "error")
        has_error |= lower
        dash = "dash" if "test" in key else "solid"
        data.append({"type": "scatter", "mode": "lines+markers", "x": x, "y": jsonable(values), "name": label,
                     "yaxis": "y2" if lower else "y", "marker": {"size": 4},
                     "line": {"dash": dash, "color": COLORS[(k // 2) % len(COLORS)] if len(series) > 2 else None}})
    layout = _layout(view, xaxis={"title": {"text": x_title}, "anchor": "y2" if has_error else "y"},
                     yaxis={"title": {"text": "loss"}, "domain": [0.45, 1.0] if has_error else [0, 1]}, height=520)
    if has_error:
        layout["yaxis2"] = {"title": {"text": "error (%)"}, "domain": [0.0, 0.38]}
    layout["shapes"] = [{"type": "line", "xref": "x", "yref": "paper", "x0": v, "x1": v, "y0": 0, "y1": 1,
                         "line": {"color": "#999", "dash": "dot", "width": 1}} for v, _ in marks]
    layout["annotations"] = [{"x": v, "y": 1.0, "xref": "x", "yref": "paper", "text": t, "showarrow": False,
                              "yanchor": "bottom"} for v, t in marks]
    return {"data": data, "layout": layout}


def _split_series(prefixes: Sequence[tuple[str, str]], err: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for metric, kind in (("loss", "loss"), (err, "acc" if err == "acc" else "error")):
        for prefix, label in prefixes:
            for split in ("train", "test"):
                out.append((f"{prefix}{split}_{metric}", f"{label}{split} {'loss' if kind == 'loss' else 'error'}",
                            kind))
    return out


def interpolate(view: Any) -> Figure:
    """Train/test loss and error along the straight line between two checkpoints."""
    start = next((f"{i['run']}:{i['step']}" for i in view.inputs if i.get("role") == "start"), "start")
    end = next((f"{i['run']}:{i['step']}" for i in view.inputs if i.get("role") == "end"), "end")
    return curves(view, "alpha", _split_series([("", "")], "acc"), "α", marks=[(0.0, start), (1.0, end)])


def surface(view: Any) -> Figure:
    """A 2D surface in 3D; a 1D surface as loss and error curves."""
    if "y" not in view.arrays:
        split = str(view.params.get("split", "train"))
        return curves(view, "x", [("loss", f"{split} loss", "loss"), ("acc", f"{split} error", "acc")],
                      "x (direction)", marks=[(0.0, "center")])
    return surface3d(view)


def surface_contour(view: Any) -> Figure:
    """A 2D surface as contours with the other inputs and any path marked; 1D: the curves."""
    return contour(view) if "y" in view.arrays else surface(view)


def curve(view: Any) -> Figure:
    """Loss and error along the fitted curve and the straight line (Garipov et al. 2018, Fig. 2)."""
    kind = str(view.params.get("curve", "bezier"))
    return curves(view, "t", _split_series([("curve_", f"{kind} curve, "), ("line_", "line, ")], "error"), "t")


def tunnel(view: Any) -> Figure:
    """Loss and error along the tunnel and the straight line."""
    return curves(view, "t", _split_series([("path_", "tunnel, "), ("line_", "line, ")], "err"), "t")


def plane(view: Any) -> Figure:
    """The loss on the plane through start, bend and end, with the curve on it."""
    key = "train_loss" if "train_loss" in view.arrays else "test_loss"
    return contour(view, key)


def hessian(view: Any) -> Figure:
    """The Hessian's spectral density (log scale) with the top eigenvalues marked, or the eigenvalues."""
    a = view.arrays
    values = np.asarray(a.get("eigenvalues", []), float)
    if "density" in a:
        data = [{"type": "scatter", "mode": "lines", "x": jsonable(a["density_grid"]),
                 "y": jsonable(np.maximum(np.asarray(a["density"], float), 1e-300)), "name": "density (SLQ)"}]
        shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": float(v), "x1": float(v), "y0": 0, "y1": 1,
                   "line": {"color": "#d62728", "dash": "dash", "width": 1}} for v in values]
        layout = _layout(view, xaxis={"title": {"text": "eigenvalue"}},
                         yaxis={"title": {"text": "density"}, "type": "log"}, shapes=shapes, height=460)
        return {"data": data, "layout": layout}
    errors = np.asarray(a.get("eigenvalue_errors", np.zeros_like(values)), float)
    data = [{"type": "scatter", "mode": "markers", "x": list(range(1, len(values) + 1)), "y": jsonable(values),
             "error_y": {"type": "data", "array": jsonable(errors)}, "name": "top eigenvalues"}]
    return {"data": data, "layout": _layout(view, xaxis={"title": {"text": "index i"}},
                                            yaxis={"title": {"text": "Hessian eigenvalue"}}, height=460)}


def eigenmap(view: Any, key: str = "ratio") -> Figure:
    """|λmin/λmax| over the plane (Li et al. 2018, Fig. 7) with loss contours on top."""
    a = view.arrays
    xs, ys = np.asarray(a["x"], float), np.asarray(a["y"], float)
    rows = np.asarray(a.get("row_index", np.arange(len(ys))))
    cols = np.asarray(a.get("col_index", np.arange(len(xs))))
    data: list[dict[str, Any]] = [{"type": "heatmap", "x": jsonable(xs[cols]), "y": jsonable(ys[rows]),
                                   "z": jsonable(a[key]), "colorscale": "Viridis", "name": key,
                                   "colorbar": {"title": {"text": "|λmin/λmax|" if key == "ratio" else key}}}]
    if "loss" in a:
        data.append({"type": "contour", "x": jsonable(xs[cols]), "y": jsonable(ys[rows]), "z": jsonable(a["loss"]),
                     "showscale": False, "contours": {"coloring": "none", "showlabels": True},
                     "line": {"color": "white"}, "name": "loss"})
    xl, yl = _axis_names(view)
    return {"data": data, "layout": _layout(view, xaxis={"title": {"text": xl}}, yaxis={"title": {"text": yl}},
                                            height=500)}


def ensemble(view: Any) -> Figure:
    """The growing ensemble's error against its size, next to each member's."""
    a = view.arrays
    sizes = list(range(1, len(a["ensemble_error"]) + 1))
    data = [{"type": "scatter", "mode": "lines+markers", "x": sizes, "name": "ensemble of first k",
             "y": jsonable(100 * np.asarray(a["ensemble_error"]))}]
    if "member_error" in a:
        data.append({"type": "scatter", "mode": "markers", "x": sizes, "name": "member k",
                     "y": jsonable(100 * np.asarray(a["member_error"])),
                     "marker": {"symbol": "square", "color": "#7f7f7f"}})
    return {"data": data, "layout": _layout(view, xaxis={"title": {"text": "members"}, "dtick": 1},
                                            yaxis={"title": {"text": f"{view.params.get('split', 'test')} error (%)"}},
                                            height=440)}


def swa(view: Any) -> Figure:
    """The SWA average's error (or loss) next to the references'."""
    a = view.arrays
    split = view.params.get("split", "test")
    metric = "error" if f"reference_{split}_error" in a else "loss"
    refs = np.asarray(a.get(f"reference_{split}_{metric}", []), float)
    scale = 100.0 if metric == "error" else 1.0
    names = ["SWA", *(["SGD"] if "lr" in a else [f"m{i + 1}" for i in range(len(refs))])]
    values = [scale * float(view.scalars.get(f"swa_{split}_{metric}", float("nan"))), *(scale * refs)]
    data = [{"type": "bar", "x": names, "y": jsonable(np.asarray(values)), "name": f"{split} {metric}"}]
    return {"data": data, "layout": _layout(view, yaxis={"title": {"text": f"{split} {metric}"}}, height=420)}


#: (analysis, view name, view): the built-in interactive views.
BUILTIN: tuple[tuple[str, str, View], ...] = (
    ("surface", "default", surface),
    ("surface", "contour", surface_contour),
    ("trajectory", "default", contour),
    ("trajectory", "3d", surface3d),
    ("interpolate", "default", interpolate),
    ("curve", "default", curve),
    ("tunnel", "default", tunnel),
    ("plane", "default", plane),
    ("plane", "3d", lambda v: surface3d(v, "train_loss" if "train_loss" in v.arrays else "test_loss")),
    ("hessian", "default", hessian),
    ("eigenmap", "default", eigenmap),
    ("eigenmap", "lambda_max", lambda v: eigenmap(v, "lambda_max")),
    ("eigenmap", "lambda_min", lambda v: eigenmap(v, "lambda_min")),
    ("fge", "default", ensemble),
    ("ensemble", "default", ensemble),
    ("swa", "default", swa),
)


def builtin_views(analysis: str) -> dict[str, View]:
    """The built-in interactive views of `analysis`, by name (empty for others)."""
    return {name: fn for a, name, fn in BUILTIN if a == analysis}


#: (analysis, x array, y array): what the Compare page overlays for 1D results.
OVERLAY: dict[str, tuple[str, str]] = {
    "interpolate": ("alpha", "train_loss"),
    "curve": ("t", "curve_train_loss"),
    "tunnel": ("t", "path_train_loss"),
    "surface": ("x", "loss"),
}
