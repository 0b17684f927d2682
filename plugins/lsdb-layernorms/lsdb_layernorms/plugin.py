"""The plugin module the entry point names: one analysis and one renderer.

Uses only lsdb's public API (`lsdb.hookimpl`, `lsdb.AnalysisSpec`, `lsdb.Slot`,
`lsdb.AnalysisOutput`, `lsdb.ResultView`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import lsdb

__version__ = "0.1.0"


@dataclass(frozen=True)
class Params:
    include_buffers: bool = field(default=False, metadata={"help": "also report non-parameter float tensors"})
    min_numel: int = field(default=1, metadata={"min": 1, "help": "skip tensors with fewer elements"})


def layer_norms(ctx: Any, inputs: Mapping[str, list[Any]], params: Params) -> Any:
    """‖θ_l‖ for every tensor l; with a second checkpoint also ‖θ1_l − θ0_l‖ / ‖θ0_l‖."""
    theta = inputs["theta"][0].state()
    other = inputs["other"][0].state() if inputs.get("other") else None
    names = sorted(
        k
        for k, v in theta.items()
        if v.is_floating_point()
        and v.numel() >= params.min_numel
        and (params.include_buffers or not k.endswith(("running_mean", "running_var")))
    )
    norms = np.array([theta[k].double().norm().item() for k in names])
    arrays: dict[str, Any] = {"norms": norms}
    scalars = {"total_norm": float(np.sqrt((norms**2).sum())), "max_layer_norm": float(norms.max())}
    if other is not None:
        moved = np.array([(other[k].double() - theta[k].double()).norm().item() for k in names])
        arrays["relative_change"] = moved / np.maximum(norms, 1e-12)
        scalars["distance"] = float(np.sqrt((moved**2).sum()))
        scalars["max_relative_change"] = float(arrays["relative_change"].max())
    ctx.progress(1.0, "done")
    return lsdb.AnalysisOutput(arrays=arrays, scalars=scalars, attrs={"names": names})


LAYER_NORMS = lsdb.AnalysisSpec(
    name="layer-norms",
    version=1,
    run=layer_norms,
    params=Params,
    inputs=(lsdb.Slot("theta"), lsdb.Slot("other", min=0, max=1, help="a later checkpoint of the same model")),
    needs_data=False,
    description="Per-layer L2 norms of a checkpoint, and how far each layer moved towards a second one.",
)


def bar_chart(view: Any) -> Any:
    """Horizontal bars of the per-layer norms (and relative change, when present)."""
    from matplotlib.figure import Figure

    names = list(view.attrs["names"])
    panels = 2 if "relative_change" in view.arrays else 1
    fig = Figure(figsize=(5 * panels, 0.3 * len(names) + 1.5))
    ax = fig.add_subplot(1, panels, 1)
    ax.barh(names, view.arrays["norms"])
    ax.set_xlabel("‖θ‖ per tensor")
    if panels == 2:
        ax2 = fig.add_subplot(1, 2, 2, sharey=ax)
        ax2.barh(names, view.arrays["relative_change"], color="tab:orange")
        ax2.set_xlabel("‖θ₁ − θ₀‖ / ‖θ₀‖")
    fig.suptitle(view.title)
    return fig


@lsdb.hookimpl
def register_analyses(register: Callable[[Any], None]) -> None:
    register(LAYER_NORMS)


@lsdb.hookimpl
def register_renderers(register: Callable[..., None]) -> None:
    register("layer-norms", bar_chart)
