"""`minima-map`: a 2D map of many minima and trajectory iterates, coloured by test accuracy (Huang et al. 2019).

Huang, Emam, Goldblum, Fowl, Terry, Huang & Goldstein 2019 ("Understanding Generalization
through Visualizations", arXiv:1906.03291, §3–4, Fig. 1 and 4) embed the weight vectors of many
networks in two dimensions and colour them by test accuracy: minima that generalize well and
"bad" minima — found by adding a loss on a random-labelled copy of the data (`lsdb train
--random-labels W`) — sit in different regions, the good ones in wide basins. This analysis
flattens each input's parameters (buffers are left out), embeds them with PCA (always stored)
and t-SNE (van der Maaten & Hinton 2008, from scikit-learn when installed), and evaluates every
point's loss and accuracy on the train and test splits.

Inputs: the `checkpoints` (two or more: minima from any runs of one architecture) and up to four
optional trajectories (run names: all their checkpoints by step), drawn as paths.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from lsdb.landscape.wide_svd import wide_svd
from lsdb.plugin import (
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    Footprint,
    InputCheckpoint,
    Slot,
    by_step,
    finite_scalars,
)
from lsdb_structure.tunnel import evaluate_points

TRAJECTORY_ROLES = ("trajectory", "trajectory2", "trajectory3", "trajectory4")
METHODS = ("auto", "pca", "tsne")


@dataclass(frozen=True)
class MinimaMapParams:
    """Parameters of `minima-map`."""

    method: str = field(default="auto", metadata={
        "help": "embedding: pca, tsne (needs scikit-learn), or auto (t-SNE when scikit-learn is installed)",
        "choices": METHODS})
    perplexity: float = field(default=10.0, metadata={"help": "t-SNE perplexity (capped below the point count)",
                                                      "min": 1.0})
    splits: tuple[str, ...] = field(default=("train", "test"), metadata={"help": "splits to evaluate each point on"})

    def __post_init__(self) -> None:
        if not self.splits or any(s not in ("train", "test") for s in self.splits):
            raise ValueError(f"splits must be among train, test, got {list(self.splits)}")


def has_sklearn() -> bool:
    """Whether scikit-learn can be imported (t-SNE is then available)."""
    return importlib.util.find_spec("sklearn") is not None


def pca_embedding(vectors: torch.Tensor, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (N, k) of the centred rows on their top-k principal axes, and the explained variance
    ratios (float64). Axes' signs are fixed so that the largest-magnitude loading is positive."""
    k_eff = min(k, *vectors.shape)
    found = wide_svd(vectors, k_eff, center=True)  # blockwise: no float64 copy of the rows
    s = found.s
    coords = np.zeros((len(vectors), k))
    coords[:, :k_eff] = (found.u[:, :k_eff] * s[:k_eff]).cpu().numpy()
    total = float((s**2).sum())
    ratios = np.zeros(k)
    ratios[:k_eff] = ((s[:k_eff] ** 2) / total).numpy() if total > 0 else 0.0
    return coords, ratios


def tsne_embedding(vectors: torch.Tensor, perplexity: float, seed: int) -> np.ndarray:
    """scikit-learn's t-SNE (PCA initialization, seeded) of the rows; the perplexity is capped at (N − 1) / 3."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    capped = max(1.0, min(perplexity, (n - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=capped, init="pca", random_state=seed,
                method="exact" if n < 60 else "barnes_hut")
    return np.asarray(tsne.fit_transform(vectors.to(torch.float64).cpu().numpy()), dtype=np.float64)


def run_minima_map(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]],
                   params: MinimaMapParams) -> AnalysisOutput:
    """Flatten, embed and evaluate every input (checkpoints first, then each trajectory by step)."""
    groups = [list(inputs.get("checkpoints", ()))] + [by_step(inputs.get(r, ())) for r in TRAJECTORY_ROLES]
    items = [(g, c) for g, ckpts in enumerate(groups) for c in ckpts]
    if len(items) < 2:
        raise BadInput("minima-map needs at least two checkpoints to embed")
    method = params.method
    if method == "tsne" and not has_sklearn():
        raise BadInput("minima-map: method=tsne needs scikit-learn (pip install scikit-learn); or use method=pca")
    if method == "auto":
        method = "tsne" if has_sklearn() and len(items) >= 5 else "pca"
    ctx.progress(0.0, "loading checkpoints")
    model = ctx.build_model(items[0][1].state())
    layout = ctx.layout(model)
    points = torch.stack([ctx.point(layout, c) for _, c in items])
    weights = points[:, : layout.n_params]
    pca, ratios = pca_embedding(weights)
    coords = tsne_embedding(weights, params.perplexity, ctx.seed) if method == "tsne" else pca
    ctx.progress(0.2, f"embedded with {method}")
    evaluated = evaluate_points(ctx, model, points, tuple(params.splits), "eval", 0.2, 1.0)
    arrays: dict[str, np.ndarray] = {
        "coords": coords,
        "pca_coords": pca,
        "explained_variance_ratio": ratios,
        "group": np.asarray([g for g, _ in items], dtype=np.int64),
        "step": np.asarray([c.step if c.step is not None else -1 for _, c in items], dtype=np.int64),
        "checkpoint_id": np.asarray([c.id for _, c in items], dtype=np.int64),
    }
    scalars: dict[str, float] = {"n_points": float(len(items))}
    for split, (loss, acc) in evaluated.items():
        arrays[f"{split}_loss"], arrays[f"{split}_acc"] = loss, acc
        if np.isfinite(acc).any():
            scalars[f"{split}_acc_min"], scalars[f"{split}_acc_max"] = float(np.nanmin(acc)), float(np.nanmax(acc))
    acc = arrays.get("test_acc")
    if acc is not None and np.isfinite(acc).all() and np.ptp(acc) > 0:
        corr = [abs(float(np.corrcoef(pca[:, j], acc)[0, 1])) for j in range(2) if np.ptp(pca[:, j]) > 0]
        if corr:
            scalars["acc_pc_correlation"] = max(corr)
    attrs = {"method": method, "labels": [c.name for _, c in items], "groups": ["checkpoints", *TRAJECTORY_ROLES]}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


def minima_map_copies(params: MinimaMapParams, footprint: Footprint) -> float:
    """Parameter copies at the peak (scripts/bench_memory.py, rounded up): the stacked inputs, and for
    t-SNE scikit-learn's float64 copies of them."""
    n = footprint.n_inputs
    tsne = params.method == "tsne" or (params.method == "auto" and has_sklearn() and n >= 5)
    return 20.0 * n if tsne else 6.0 + 1.5 * n


MINIMA_MAP = AnalysisSpec(
    name="minima-map",
    version=1,
    run=run_minima_map,
    copies=minima_map_copies,
    params=MinimaMapParams,
    inputs=(
        Slot("checkpoints", min=2, max=None, help="minima (any runs of one architecture)"),
        *(Slot(role, kind="trajectory", min=0, max=None, help="a run: its checkpoints by step, drawn as a path")
          for role in TRAJECTORY_ROLES),
    ),
    resources="any",
    description=(
        "Huang et al. 2019's map of minima: a 2D embedding (t-SNE when scikit-learn is installed, else PCA) of "
        "many checkpoints and trajectory iterates, coloured by test accuracy. Make 'bad' minima with "
        "`lsdb train --random-labels W`.\n\nArrays: coords (N, 2), pca_coords, explained_variance_ratio, group "
        "(0: checkpoints, k: trajectory k), step, checkpoint_id, <split>_loss, <split>_acc. Scalars: n_points, "
        "<split>_acc_min/_max, acc_pc_correlation (largest |correlation| of test accuracy with a PCA axis)."
    ),
)
