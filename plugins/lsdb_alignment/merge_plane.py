"""`merge-plane`: loss and accuracy over the plane of a base and two task vectors, with the merges on it.

θ(x, y) = θ_base + x τ_1 + y τ_2 with τ_t = θ_t − θ_base (Ilharco et al. 2023's task vectors), so
(0, 0) is the base, (1, 0) and (0, 1) the two fine-tunes, (½, ½) their average and (λ, λ) task
arithmetic. TIES (Yadav et al. 2023) and SLERP merges leave the plane; they are drawn at the
least-squares coordinates of their parameters in the (τ_1, τ_2) basis, with the distance to the
plane and the loss at the merge itself reported. The picture a merging tool never shows:
where the merge sits in the basin(s) of its inputs. Checkpoints given as ``merged=`` (e.g. the
output of `merge`) are placed the same way.

With ``first_classes``/``second_classes`` (the labels each fine-tune was trained on) the plane is
also evaluated on those examples alone, which shows each task's basin separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape import Evaluator
from lsdb.landscape.merging import plane_coordinates, task_vectors
from lsdb.plugin import (
    BN_MODES,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    accuracy_of,
    finite_scalars,
    single,
)
from lsdb_alignment.matching import has_batchnorm
from lsdb_alignment.merge import MergeParams, merged_state


@dataclass(frozen=True)
class MergePlaneParams:
    """Parameters of `merge-plane`."""

    xmin: float = field(default=-0.25, metadata={"help": "first x (coefficient of τ_1)"})
    xmax: float = field(default=1.25, metadata={"help": "last x"})
    ymin: float = field(default=-0.25, metadata={"help": "first y (coefficient of τ_2)"})
    ymax: float = field(default=1.25, metadata={"help": "last y"})
    xnum: int = field(default=16, metadata={"help": "grid points along x", "min": 2})
    ynum: int = field(default=16, metadata={"help": "grid points along y", "min": 2})
    splits: tuple[str, ...] = field(default=("test",), metadata={"help": "splits to evaluate"})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval or recompute at every point",
                                              "choices": BN_MODES})
    scale: float = field(default=0.5, metadata={"help": "λ of the task-arithmetic and TIES points drawn"})
    density: float = field(default=0.2, metadata={"help": "TIES density of the drawn TIES point", "min": 1e-9,
                                                   "max": 1.0})
    first_classes: tuple[int, ...] = field(default=(), metadata={"help": "labels of the first task (also "
                                                                         "evaluated alone)"})
    second_classes: tuple[int, ...] = field(default=(), metadata={"help": "labels of the second task"})

    def __post_init__(self) -> None:
        if not (self.xmin < self.xmax and self.ymin < self.ymax):
            raise ValueError("the plane needs xmin < xmax and ymin < ymax")
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def _subsets(ctx: Context, split: str, params: MergePlaneParams) -> dict[str, tuple[Tensor, Tensor]]:
    x, y = ctx.data(split)
    out = {"": (x, y)}
    for name, classes in (("first", params.first_classes), ("second", params.second_classes)):
        if classes:
            if ctx.loss != "cross_entropy":
                raise BadInput("merge-plane: first_classes/second_classes need a classification task")
            keep = torch.isin(y, torch.tensor(classes, device=y.device))
            if not bool(keep.any()):
                raise BadInput(f"merge-plane: no {split} example has a label in {list(classes)}")
            out[f"_{name}"] = (x[keep], y[keep])
    return out


def _evaluator(ctx: Context, model: nn.Module, x: Tensor, y: Tensor, bn: str) -> Evaluator:
    train_x = ctx.data("train")[0] if bn == "recompute" else None
    return Evaluator(model, x, y, loss=ctx.loss, bn=bn, train_x=train_x,  # type: ignore[arg-type]
                     device=ctx.device, dtype=ctx.dtype)


def _merges(base: dict[str, Tensor], a: dict[str, Tensor], b: dict[str, Tensor], names: list[str],
            params: MergePlaneParams, extra: list[tuple[str, dict[str, Tensor]]]
            ) -> list[tuple[str, dict[str, Tensor]]]:
    options = MergeParams(scale=params.scale, density=params.density)
    out = [(label, merged_state(method, [a, b], base, names, options)[0])
           for label, method in (("average", "average"), (f"task arithmetic λ={params.scale:g}", "task-arithmetic"),
                                 (f"TIES k={params.density:g} λ={params.scale:g}", "ties"), ("SLERP", "slerp"))]
    return out + extra


def run_merge_plane(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: MergePlaneParams
                    ) -> AnalysisOutput:
    """Evaluate the (τ_1, τ_2) plane through the base and place the merges on it."""
    base_c, first_c, second_c = single(inputs, "base"), single(inputs, "first"), single(inputs, "second")
    ctx.progress(0.0, "loading checkpoints")
    base, a, b = base_c.state(), first_c.state(), second_c.state()
    model = ctx.build_model(base)
    if params.bn == "eval" and has_batchnorm(model):
        bn = "recompute"  # interpolated running statistics mean nothing off the inputs
    else:
        bn = params.bn
    names = [n for n, _ in model.named_parameters()]
    layout = ctx.layout(model)
    theta0 = layout.flatten(base, dtype=ctx.dtype, device=ctx.device)
    directions = torch.stack([layout.flatten(s, dtype=ctx.dtype, device=ctx.device) - theta0 for s in (a, b)])
    xs = np.linspace(params.xmin, params.xmax, params.xnum)
    ys = np.linspace(params.ymin, params.ymax, params.ynum)
    gx, gy = np.meshgrid(xs, ys)
    coefficients = torch.from_numpy(np.stack([gx.reshape(-1), gy.reshape(-1)], axis=1))

    tau = task_vectors(base, [a, b], names)
    if float(tau[0].norm()) == 0.0 or float(tau[1].norm()) == 0.0:
        raise BadInput("merge-plane: a fine-tune equals the base, so its task vector is zero and spans no plane")
    extra = [(c.name, c.state()) for c in inputs.get("merged", ())]
    merges = _merges(base, a, b, names, params, extra)
    placed = [plane_coordinates(base, tau, s, names) for _, s in merges]
    arrays: dict[str, np.ndarray | Tensor] = {
        "x": xs, "y": ys,
        "merged_x": np.array([float(c[0]) for c, _ in placed]),
        "merged_y": np.array([float(c[1]) for c, _ in placed]),
        "merged_residual": np.array([r for _, r in placed]),
    }
    scalars: dict[str, float] = {
        "task_vector_cosine": float(tau[0] @ tau[1] / (tau[0].norm() * tau[1].norm())),
        "task_vector_norm_1": float(tau[0].norm()), "task_vector_norm_2": float(tau[1].norm()),
    }
    merge_points = torch.stack([layout.flatten(s, dtype=ctx.dtype, device=ctx.device) for _, s in merges])
    jobs = [(split, key, xy) for split in params.splits for key, xy in _subsets(ctx, split, params).items()]
    for i, (split, key, (x, y)) in enumerate(jobs):
        ev = _evaluator(ctx, model, x, y, bn)
        grid = ev.along(directions, coefficients, theta0, should_cancel=ctx.should_cancel,
                        progress=ctx.span(i / len(jobs), (i + 1) / len(jobs), f"{split}{key} plane"))
        loss = grid.loss.double().numpy()
        arrays[f"{split}{key}_loss"] = loss.reshape(params.ynum, params.xnum)
        arrays[f"{split}{key}_acc"] = accuracy_of(grid, loss.shape).reshape(params.ynum, params.xnum)
        at = ev.at_points(merge_points, should_cancel=ctx.should_cancel)
        merged_loss = at.loss.double().numpy()
        arrays[f"merged_{split}{key}_loss"] = merged_loss
        arrays[f"merged_{split}{key}_acc"] = accuracy_of(at, merged_loss.shape)
        for j, (label, _) in enumerate(merges[:4]):
            slug = label.split(" ")[0].lower().replace("task", "task_arithmetic")
            scalars[f"{slug}_{split}{key}_loss"] = float(merged_loss[j])
            scalars[f"{slug}_{split}{key}_acc"] = float(arrays[f"merged_{split}{key}_acc"][j])
    ctx.progress(1.0, "done")
    attrs = {"base": base_c.name, "first": first_c.name, "second": second_c.name, "bn": bn,
             "merged_labels": "|".join(label for label, _ in merges)}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


MERGE_PLANE = AnalysisSpec(
    name="merge-plane",
    version=1,
    run=run_merge_plane,
    copies=lambda p, f: 40.0 + 3 * max(0, f.n_inputs - 3),
    params=MergePlaneParams,
    inputs=(
        Slot("base", help="the common parent θ_base"),
        Slot("first", help="the first fine-tune (x axis: τ_1 = θ_1 − θ_base)"),
        Slot("second", help="the second fine-tune (y axis)"),
        Slot("merged", min=0, max=None, help="merged checkpoints to place on the plane"),
    ),
    resources="any",
    description=(
        "Loss and accuracy over the plane θ_base + x τ_1 + y τ_2 of two task vectors (Ilharco et al. 2023), with "
        "average, task arithmetic, TIES (Yadav et al. 2023), SLERP and any given merges placed on it (least-squares "
        "coordinates; off-plane distance reported).\n\nArrays: x, y, <split>[_first|_second]_{loss,acc} (ynum, xnum), "
        "merged_x, merged_y, merged_residual, merged_<split>[...]_{loss,acc}. Scalars: task_vector_cosine, "
        "task_vector_norm_{1,2}, {average,task_arithmetic,ties,slerp}_<split>[...]_{loss,acc}."
    ),
)
