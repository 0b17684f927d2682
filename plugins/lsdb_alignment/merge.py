"""`merge`: merge two or more networks of one architecture into one stored checkpoint.

Methods (the math is `lsdb.landscape.merging`): ``average`` (a weighted linear average; model
soups, Wortsman et al. 2022), ``task-arithmetic`` (θ_base + λ Σ τ_t; Ilharco et al. 2023),
``ties`` (trim to the top-k% of each task vector, elect signs, disjoint mean; Yadav et al. 2023)
and ``slerp`` (spherical interpolation of two networks, or of two task vectors from a base).
With ``align=weights|activations`` every network after the first is first permuted to match
the first (Ainsworth et al. 2023) — what makes averaging independently trained networks
meaningful; fine-tunes of one parent share their units and need no alignment.

Only parameters are merged by the method; floating buffers (BatchNorm statistics) are
averaged and then, for BatchNorm networks, recomputed on the training data at the merged
point (``bn_reset``). The merged network is stored as a checkpoint of the first network's run
and judged against its inputs on a split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lsdb.landscape.merging import linear_average, slerp, task_arithmetic, task_vectors, ties_merge
from lsdb.landscape.repair import reset_batchnorm
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    accuracy_of,
    finite_scalars,
)
from lsdb_alignment.matching import ALIGN_CHOICES, align_state, cast_like, data_batches

METHODS = ("average", "task-arithmetic", "ties", "slerp")


@dataclass(frozen=True)
class MergeParams:
    """Parameters of `merge`."""

    method: str = field(default="average", metadata={"help": "average, task-arithmetic, ties or slerp",
                                                     "choices": METHODS})
    scale: float = field(default=1.0, metadata={"help": "λ of task-arithmetic and ties: θ_base + λ τ"})
    density: float = field(default=0.2, metadata={"help": "ties: fraction of each task vector kept (top-k by "
                                                           "magnitude)", "min": 1e-9, "max": 1.0})
    t: float = field(default=0.5, metadata={"help": "slerp: fraction of the arc from the first to the second"})
    weights: tuple[float, ...] = field(default=(), metadata={"help": "average: one weight per network (default "
                                                                     "equal)"})
    align: str = field(default="none", metadata={"help": "permute each network to match the first before merging",
                                                 "choices": ALIGN_CHOICES})
    bn_reset: bool = field(default=True, metadata={"help": "recompute BatchNorm statistics at the merged point"})
    subset: int = field(default=1024, metadata={"help": "training examples for activations / BatchNorm (0: all)",
                                                "min": 0})
    batch_size: int = field(default=256, metadata={"help": "examples per batch", "min": 1})
    split: str = field(default="test", metadata={"help": "split the merge is judged on", "choices": SPLITS})


def _check(method: str, n: int, base: InputCheckpoint | None, params: MergeParams) -> None:
    if method in ("task-arithmetic", "ties") and base is None:
        raise BadInput(f"merge: method={method} needs a base checkpoint (base=ID): task vectors are θ_t − θ_base")
    if method == "slerp" and n != 2:
        raise BadInput(f"merge: slerp merges exactly 2 networks, got {n}")
    if method == "average" and params.weights and len(params.weights) != n:
        raise BadInput(f"merge: {len(params.weights)} weights for {n} networks")


def merged_state(method: str, states: list[dict[str, Tensor]], base: dict[str, Tensor] | None,
                 names: list[str], params: MergeParams) -> tuple[dict[str, Tensor], dict[str, float]]:
    """(the merged state, method scalars) — parameters by the method, floating buffers averaged."""
    scalars: dict[str, float] = {}
    if method == "average":
        out = linear_average(states, names, params.weights or None)
    elif method == "task-arithmetic":
        assert base is not None
        out = task_arithmetic(base, states, names, params.scale)
    elif method == "ties":
        assert base is not None
        out = ties_merge(base, states, names, params.density, params.scale)
    else:
        out, omega = slerp(states[0], states[1], names, params.t, base)
        scalars["slerp_angle"] = omega
    buffers = [k for k, v in states[0].items() if k not in names and v.is_floating_point()]
    if buffers:
        out.update({k: v for k, v in linear_average(states, buffers).items() if k in buffers})
    return out, scalars


def run_merge(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: MergeParams) -> AnalysisOutput:
    """Merge the networks (after optional alignment), reset BatchNorm, store and judge the merge."""
    members = list(inputs.get("models", ()))
    given = list(inputs.get("base", ()))
    base = given[0] if given else None
    _check(params.method, len(members), base, params)
    ctx.progress(0.0, "loading checkpoints")
    states = [m.state() for m in members]
    for i in range(1, len(states)):
        ctx.progress(0.1 + 0.3 * i / len(states), f"aligning {members[i].name}")
        states[i] = cast_like(align_state(ctx, states[0], states[i], params.align, "merge",
                                          subset=params.subset, batch_size=params.batch_size)[0], states[i])
    base_state = base.state() if base is not None else None
    model = ctx.build_model(states[0])
    names = [n for n, _ in model.named_parameters()]
    try:
        merged, scalars = merged_state(params.method, states, base_state, names, params)
    except ValueError as exc:
        raise BadInput(f"merge: {exc}") from None
    net = ctx.build_model(merged)
    if params.bn_reset and reset_batchnorm(net, data_batches(ctx, "merge", params.subset, params.batch_size)):
        merged = {k: v.detach() for k, v in net.state_dict().items()}
    merged = cast_like(merged, states[0])

    ctx.progress(0.6, f"judging on the {params.split} split")
    layout = ctx.layout(net)
    refs = [*states, *([base_state] if base_state is not None else [])]
    points = torch.stack([layout.flatten(s, dtype=ctx.dtype, device=ctx.device) for s in [merged, *refs]])
    result = ctx.evaluator(net, params.split, "eval").at_points(points, should_cancel=ctx.should_cancel)
    loss = result.loss.double().numpy()
    acc = accuracy_of(result, loss.shape)
    n = len(states)
    split = params.split
    arrays: dict[str, np.ndarray | Tensor] = {f"member_{split}_loss": loss[1:n + 1],
                                              f"member_{split}_acc": acc[1:n + 1]}
    scalars.update({f"merged_{split}_loss": float(loss[0]), f"merged_{split}_acc": float(acc[0]),
                    f"mean_member_{split}_loss": float(loss[1:n + 1].mean()),
                    f"mean_member_{split}_acc": float(acc[1:n + 1].mean()), "n_merged": float(n)})
    if base_state is not None:
        scalars[f"base_{split}_loss"], scalars[f"base_{split}_acc"] = float(loss[-1]), float(acc[-1])
        tau = task_vectors(base_state, states, names)
        arrays["task_vector_norm"] = tau.norm(dim=1).numpy()
        if n == 2:
            scalars["task_vector_cosine"] = float(tau[0] @ tau[1] / (tau[0].norm() * tau[1].norm()).clamp_min(1e-300))
    ctx.progress(1.0, "done")
    checkpoint = NewCheckpointOutput(tensors=merged, label=f"merge {params.method}", run=members[0].run)
    attrs = {"models": ", ".join(m.name for m in members), "base": base.name if base is not None else "",
             "method": params.method, "align": params.align}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=[checkpoint], attrs=attrs)


MERGE = AnalysisSpec(
    name="merge",
    version=2,  # 2: the seeded subset is a random one (it was the first `subset` examples)
    run=run_merge,
    copies=lambda p, f: 6.0 + 3 * f.n_inputs,
    params=MergeParams,
    inputs=(
        Slot("models", min=2, max=None, help="the networks to merge (same architecture)"),
        Slot("base", min=0, max=1, help="their common parent (task-arithmetic, ties; optional for slerp)"),
    ),
    resources="any",
    description=(
        "Merge networks: linear average, task arithmetic (Ilharco et al. 2023), TIES (Yadav et al. 2023) or SLERP; "
        "optionally after permutation alignment to the first (Ainsworth et al. 2023); BatchNorm recomputed; the "
        "merge stored as a checkpoint.\n\nArrays: member_<split>_{loss,acc}, task_vector_norm. Scalars: "
        "merged_<split>_{loss,acc}, mean_member_<split>_{loss,acc}, base_<split>_{loss,acc}, n_merged, "
        "task_vector_cosine, slerp_angle (radians)."
    ),
)
