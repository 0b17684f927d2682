"""The plugin module the entry point names: one analysis and one renderer.

Uses only `lsdb.plugin`, lsdb's plugin contract: the `analysis` and `renderer` decorators,
the `Context`, `Checkpoint` and `Output` types, `Param` for parameter metadata, and the
`ResultView` a renderer draws.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from matplotlib.figure import Figure

from lsdb.plugin import Checkpoint, Context, Output, Param, ResultView, analysis, renderer

__version__ = "0.1.0"


@analysis("layer-norms", needs_data=False)
def layer_norms(
    ctx: Context,
    theta: Checkpoint,
    other: Annotated[Checkpoint | None, "a later checkpoint of the same model"] = None,
    *,
    include_buffers: Annotated[bool, Param(help="also report non-parameter float tensors")] = False,
    min_numel: Annotated[int, Param(min=1, help="skip tensors with fewer elements")] = 1,
) -> Output:
    """Per-layer L2 norms of a checkpoint, and how far each layer moved towards a second one.

    ‖θ_l‖ for every tensor l; with a second checkpoint also ‖θ1_l − θ0_l‖ / ‖θ0_l‖.
    """
    weights = theta.state()
    moved_to = other.state() if other is not None else None
    names = sorted(
        k
        for k, v in weights.items()
        if v.is_floating_point()
        and v.numel() >= min_numel
        and (include_buffers or not k.endswith(("running_mean", "running_var")))
    )
    norms = np.array([weights[k].double().norm().item() for k in names])
    out = Output(
        arrays={"norms": norms},
        scalars={"total_norm": float(np.sqrt((norms**2).sum())), "max_layer_norm": float(norms.max())},
        attrs={"names": names},
    )
    if moved_to is not None:
        moved = np.array([(moved_to[k].double() - weights[k].double()).norm().item() for k in names])
        relative_change = moved / np.maximum(norms, 1e-12)
        out.arrays["relative_change"] = relative_change
        out.scalars["distance"] = float(np.sqrt((moved**2).sum()))
        out.scalars["max_relative_change"] = float(relative_change.max())
    ctx.progress(1.0, "done")
    return out


@renderer(layer_norms)
def bar_chart(view: ResultView) -> Figure:
    """Horizontal bars of the per-layer norms (and relative change, when present)."""
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
