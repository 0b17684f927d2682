"""A plugin module written in the decorator style only (loaded through LSDB_EXTRA_PLUGINS by the tests)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from matplotlib.figure import Figure

from lsdb.plugin import Checkpoint, Context, Output, Param, ResultView, analysis, renderer


@analysis("declared-distance", needs_data=False)
def declared_distance(
    ctx: Context,
    start: Checkpoint,
    others: list[Checkpoint],
    *,
    scale: Annotated[float, Param(min=0.0, help="multiplies every distance")] = 1.0,
) -> Output:
    """‖θ_other − θ_start‖ for each other checkpoint, times `scale`."""
    base = start.state()
    distances = []
    for other in others:
        state = other.state()
        squared = sum(((state[k].double() - v.double()) ** 2).sum() for k, v in base.items())
        distances.append(scale * float(squared) ** 0.5)
    ctx.progress(1.0, "done")
    return Output(arrays={"distances": np.array(distances)}, scalars={"max_distance": max(distances)})


@renderer(declared_distance, name="bars")
def bars(view: ResultView) -> Figure:
    fig = Figure()
    fig.add_subplot().bar(range(len(view.arrays["distances"])), view.arrays["distances"])
    return fig
