"""Axis labels and input names for figures of planes in parameter space.

A plane drawn by `surface` or `eigenmap` is spanned by random filter-normalized directions
(Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", §4), by the directions
towards other checkpoints (the planes of Garipov et al. 2018, Fig. 1), by the top PCA
directions of a trajectory, labelled with the share of variance each explains (Li et al.
2018, §6, Fig. 9), or by Hessian eigenvectors, labelled with their eigenvalues (§7). These
helpers read only a result's parameters, arrays and input descriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lsdb.analyses.view import ResultView

__all__ = ["input_names", "pc_label", "plane_axis_labels"]


def input_names(view: ResultView, role: str) -> list[str]:
    """``run@step`` (or ``#id``) of the inputs of slot `role`, in position order."""
    rows = sorted((i for i in view.inputs if i.get("role") == role), key=lambda i: i.get("position", 0))
    return [
        f"{i.get('run', '?')}@{i['step']}" if i.get("step") is not None else f"#{i.get('checkpoint', '?')}"
        for i in rows
    ]


def pc_label(ratios: np.ndarray, j: int) -> str:
    """``1st PC: 12.34 %``: the j-th (0 or 1) principal direction with its explained variance."""
    ordinal = ("1st", "2nd")[j]
    share = f": {100 * float(ratios[j]):.2f} %" if j < len(ratios) else ""
    return f"{ordinal} PC{share}"


def plane_axis_labels(view: ResultView) -> tuple[str, str]:
    """Axis labels for a plane built by the shared plane directions (`surface`, `eigenmap`)."""
    mode = view.params.get("directions", "random")
    if mode == "pca":
        ratios = view.arrays.get("explained_variance_ratio", np.zeros(0))
        return pc_label(ratios, 0), pc_label(ratios, 1)
    if mode == "checkpoints":
        others = input_names(view, "others") + ["d2", "d2"]
        return f"x (towards {others[0]})", f"y (towards {others[1]})"
    if mode == "hessian":
        values = [float(v) for v in view.arrays.get("eigenvalues", np.zeros(0))]
        names = ["λmax", "λmin"] if view.params.get("eigenvectors") == "extremes" else ["λ1", "λ2"]
        labels = [f"{'xy'[j]} (Hessian eigenvector, {names[j]} = {values[j]:.3g})" if j < len(values)
                  else f"{'xy'[j]} (Hessian eigenvector)" for j in range(2)]
        return labels[0], labels[1]
    norm = view.params.get("norm", "filter")
    return f"x (random, {norm}-normalized)", f"y (random, {norm}-normalized)"
