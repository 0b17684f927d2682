"""The plugin contract: everything an analysis plugin needs from lsdb, in one module.

A plugin imports its lsdb names from here (plus the math in `lsdb.landscape` and the figures
in `lsdb.plotting`), never from lsdb's internals. The quickest analysis is a typed function::

    from lsdb.plugin import Checkpoint, Context, Output, analysis

    @analysis("weight-norm", needs_data=False)
    def weight_norm(ctx: Context, theta: Checkpoint) -> Output:
        total = sum(float(t.double().pow(2).sum()) for t in theta.state().values())
        return Output(scalars={"norm": total**0.5})

and the module is named by an entry point in group ``lsdb`` (or ``LSDB_EXTRA_PLUGINS``).
See docs/plugins.md for the contract in full: the context's helpers (`Context.layout`,
`Context.point`, `Context.evaluator`, `Context.span`, `Context.aligned` for ``align`` in
`ALIGNMENTS`, ...), input helpers (`single`, `by_step`), output helpers (`finite_scalars`,
`accuracy_of`), the shared plane directions (`PlaneSpec`, `plane_directions`), and the
explicit `AnalysisSpec` + `hookimpl` style for analyses that fan out (`tile`/`merge`) or need custom slots.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lsdb.analyses.context import ALIGNMENTS, Cancelled, Context, InputCheckpoint, by_step, single
from lsdb.analyses.contract import AnalysisOutput, AnalysisSpec, Footprint, NewCheckpointOutput, Slot
from lsdb.analyses.declare import Inputs, Param, Trajectory, analysis, renderer
from lsdb.analyses.planes import (
    DIRECTIONS,
    EIGENVECTORS,
    PlaneDirections,
    PlaneSpec,
    check_plane_inputs,
    hessian_directions,
    param_mask,
    plane_directions,
    trajectory_points,
)
from lsdb.analyses.view import ResultView
from lsdb.errors import BadInput
from lsdb.hookspecs import hookimpl
from lsdb.registry import factory

__all__ = [
    "ALIGNMENTS",
    "BN_MODES",
    "DIRECTIONS",
    "EIGENVECTORS",
    "SPLITS",
    "AnalysisOutput",
    "AnalysisSpec",
    "Footprint",
    "BadInput",
    "Cancelled",
    "Checkpoint",
    "Context",
    "InputCheckpoint",
    "Inputs",
    "NewCheckpointOutput",
    "Output",
    "Param",
    "PlaneDirections",
    "PlaneSpec",
    "ResultView",
    "Slot",
    "Trajectory",
    "accuracy_of",
    "analysis",
    "by_step",
    "check_plane_inputs",
    "factory",
    "finite_scalars",
    "hessian_directions",
    "hookimpl",
    "param_mask",
    "plane_directions",
    "renderer",
    "single",
    "trajectory_points",
]

#: One input checkpoint (`InputCheckpoint`): identity, ``.name`` and ``.state()`` (its tensors).
Checkpoint = InputCheckpoint
#: What an analysis returns (`AnalysisOutput`): arrays, scalars, new checkpoints, attrs.
Output = AnalysisOutput

#: The data splits a dataset has.
SPLITS = ("train", "test")
#: BatchNorm modes of `Context.evaluator`: running statistics, or re-estimated at every point.
BN_MODES = ("eval", "recompute")


def finite_scalars(scalars: Mapping[str, float | None]) -> dict[str, float]:
    """The scalars that are finite numbers (a diverged loss makes no sortable scalar)."""
    return {k: float(v) for k, v in scalars.items() if v is not None and np.isfinite(v)}


def accuracy_of(evaluation: object, shape: tuple[int, ...]) -> np.ndarray:
    """An evaluation's accuracy as float64 NumPy of `shape`; all NaN for a regression loss (no accuracy)."""
    acc = getattr(evaluation, "accuracy", None)
    if acc is None:
        return np.full(shape, np.nan)
    return np.asarray(acc.double().numpy().reshape(shape))
