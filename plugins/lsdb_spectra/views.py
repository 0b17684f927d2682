"""Interactive views (plotly figure JSON) of the spectra family, for `lsdb ui` and `--format html`.

Each returns ``{"data": [...], "layout": {...}}`` from a result's arrays alone, the same numbers
as the matplotlib renderers in `renderers`: α per layer with its error, α per layer vs step, and
the sharpness ascent curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lsdb.plugin import ResultView

View = Callable[[ResultView], dict[str, Any]]


def _list(values: Any) -> list[float | None]:
    """Floats for JSON, with NaN and infinities as None (plotly leaves a gap)."""
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(values, dtype=float).ravel()]


def _layers(view: ResultView, n: int) -> list[str]:
    names = view.attrs.get("layers", [])
    names = [str(x) for x in (names.tolist() if hasattr(names, "tolist") else names)]
    return names if len(names) == n else [str(i) for i in range(n)]


def alpha_view(view: ResultView) -> dict[str, Any]:
    """α per layer (power-law fit) with its standard error; layers without a fit are gaps."""
    alpha = np.asarray(view.arrays["alpha"], dtype=float)
    sigma = np.asarray(view.arrays.get("sigma", np.zeros_like(alpha)), dtype=float)
    names = _layers(view, len(alpha))
    trace: dict[str, Any] = {"type": "scatter", "mode": "markers", "x": names, "y": _list(alpha), "name": "α",
             "error_y": {"type": "data", "array": [s if s is not None else 0.0 for s in _list(sigma)]}}
    mean = view.scalars.get("mean_alpha")
    title = view.title + (f" — mean α = {mean:.3f}" if mean is not None else "")
    return {"data": [trace], "layout": {"title": {"text": title}, "xaxis": {"title": {"text": "layer"}},
                                        "yaxis": {"title": {"text": "α"}},
                                        "shapes": [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": 2,
                                                    "y1": 6, "fillcolor": "green", "opacity": 0.08,
                                                    "line": {"width": 0}}]}}


def trajectory_view(view: ResultView) -> dict[str, Any]:
    """α of every fitted layer vs step, and the mean α."""
    steps = np.asarray(view.arrays["steps"], dtype=float)
    alpha = np.asarray(view.arrays["alpha"], dtype=float).reshape(len(steps), -1)
    names = _layers(view, alpha.shape[1])
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines+markers", "x": _list(steps), "y": _list(alpha[:, j]), "name": names[j]}
        for j in range(alpha.shape[1]) if np.isfinite(alpha[:, j]).any()
    ]
    if "mean_alpha" in view.arrays:
        data.append({"type": "scatter", "mode": "lines", "x": _list(steps), "y": _list(view.arrays["mean_alpha"]),
                     "name": "mean α", "line": {"width": 4, "color": "black"}})
    return {"data": data, "layout": {"title": {"text": view.title}, "xaxis": {"title": {"text": "step"}},
                                     "yaxis": {"title": {"text": "α"}}}}


def sharpness_view(view: ResultView) -> dict[str, Any]:
    """The worst-case ascent (best loss per step), with the loss before and the average case."""
    data: list[dict[str, Any]] = []
    if "ascent_curve" in view.arrays:
        curve = np.asarray(view.arrays["ascent_curve"], dtype=float)
        data.append({"type": "scatter", "mode": "lines+markers", "x": list(range(len(curve))), "y": _list(curve),
                     "name": "best loss (ascent)"})
    s = view.scalars
    shapes = []
    if "loss_before" in s:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": s["loss_before"],
                       "y1": s["loss_before"], "line": {"dash": "dash", "color": "blue"}})
        if "average_case" in s:
            level = s["loss_before"] + s["average_case"]
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level,
                           "line": {"dash": "dot", "color": "green"}})
    return {"data": data, "layout": {"title": {"text": view.title}, "shapes": shapes,
                                     "xaxis": {"title": {"text": "ascent step"}},
                                     "yaxis": {"title": {"text": "loss on the m examples"}}}}


#: (analysis, view name, view): what `register_interactive_renderers` registers
VIEWS: tuple[tuple[str, str, View], ...] = (
    ("weight-spectrum", "default", alpha_view),
    ("weight-spectrum-trajectory", "default", trajectory_view),
    ("sharpness", "default", sharpness_view),
)
