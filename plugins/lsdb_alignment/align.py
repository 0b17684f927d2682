"""`align`: permute the hidden units of one network to match another (Git Re-Basin), stored as a checkpoint.

Ainsworth, Hayase & Srinivasa 2023 ("Git Re-Basin: Merging Models modulo Permutation
Symmetries", ICLR): two networks trained from different seeds are separated by a loss barrier
on the straight line between them, which (for wide enough networks) all but vanishes once the
second network's units are permuted to match the first's — by weight matching (their Alg. 1)
or activation matching (§3.1). The permutation groups are derived from the traced graph
(`lsdb.landscape.permutations`), the aligned network is stored as a new checkpoint of the
second input's run (lineage `produced_by`), and each group's permutation is an array
``perm_<group>`` (unit i of the aligned network is unit ``perm[i]`` of the original).

When ``steps > 0`` the train loss is evaluated at `steps` points of [0, 1] along the naive and
the aligned line, with BatchNorm statistics reset at every point for BatchNorm networks (as
Ainsworth et al. do), and for networks without BatchNorm also with REPAIR (Jordan et al. 2023,
``repair=true``); the barriers are as in `interpolate` (Frankle et al. 2020, §2).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lsdb.landscape import barrier
from lsdb.landscape.permutations import apply_permutation
from lsdb.plugin import (
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    Context,
    InputCheckpoint,
    NewCheckpointOutput,
    Slot,
    finite_scalars,
    single,
)
from lsdb_alignment.matching import (
    ALIGN_METHODS,
    cast_like,
    data_batches,
    derive_spec,
    has_batchnorm,
    line_losses,
    match,
    repair_layers,
)


@dataclass(frozen=True)
class AlignParams:
    """Parameters of `align`."""

    method: str = field(default="weights", metadata={"help": "weights (Ainsworth Alg. 1) or activations (§3.1)",
                                                     "choices": ALIGN_METHODS})
    max_sweeps: int = field(default=100, metadata={"help": "weight matching: most coordinate-descent sweeps",
                                                   "min": 1})
    subset: int = field(default=1024, metadata={"help": "training examples for activations, REPAIR and BatchNorm "
                                                        "reset (0: all)", "min": 0})
    batch_size: int = field(default=256, metadata={"help": "examples per streamed batch", "min": 1})
    steps: int = field(default=11, metadata={"help": "points on [0, 1] for the barriers before/after (0: skip)",
                                             "min": 0})
    split: str = field(default="train", metadata={"help": "split the barriers are measured on", "choices": SPLITS})
    repair: bool = field(default=True, metadata={"help": "also measure the aligned line with REPAIR (networks "
                                                         "without BatchNorm; Jordan et al. 2023)"})

    def __post_init__(self) -> None:
        if self.steps == 1 or self.steps == 2:
            raise ValueError(f"steps must be 0 (no barrier) or at least 3, got {self.steps}")


def _barriers(ctx: Context, reference: Mapping[str, Tensor], other: Mapping[str, Tensor],
              aligned: Mapping[str, Tensor], layers: list[str], params: AlignParams
              ) -> tuple[dict[str, np.ndarray | Tensor], dict[str, float]]:
    model = ctx.build_model(dict(reference))
    alphas = np.linspace(0.0, 1.0, params.steps)
    batches = data_batches(ctx, "align", params.subset, params.batch_size)
    base = "reset" if has_batchnorm(model) else "none"
    lines = {"naive": (other, base), "aligned": (aligned, base)}
    if params.repair and base == "none" and layers:
        lines["repaired"] = (aligned, "repair")
    arrays: dict[str, np.ndarray | Tensor] = {"alpha": alphas}
    scalars: dict[str, float] = {}
    for i, (name, (end, mode)) in enumerate(lines.items()):
        ctx.progress(0.5 + 0.5 * i / len(lines), f"{name} line")
        loss, acc = line_losses(ctx, model, reference, end, alphas, params.split, mode, batches, layers)
        arrays[f"{name}_loss"], arrays[f"{name}_acc"] = loss, acc
        found = barrier(alphas, loss)
        if found is not None:
            scalars[f"{name}_barrier"] = found[0]
        if np.isfinite(acc).all():
            found = barrier(alphas, 1.0 - acc)
            if found is not None:
                scalars[f"{name}_error_barrier"] = found[0]
    scalars["midpoint_renormalized"] = float(base == "reset")
    return arrays, scalars


def run_align(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: AlignParams) -> AnalysisOutput:
    """Match `other` to `reference` and store the permuted `other` (function-preserving)."""
    reference, other = single(inputs, "reference"), single(inputs, "other")
    ctx.progress(0.0, "tracing the model")
    ref_state, other_state = reference.state(), other.state()
    model = ctx.build_model(ref_state)
    spec = derive_spec(ctx, model, "align")
    ctx.progress(0.1, f"{params.method} matching")
    start = time.perf_counter()
    result = match(ctx, spec, ref_state, other_state, params.method, analysis="align", max_sweeps=params.max_sweeps,
                   subset=params.subset, batch_size=params.batch_size)
    seconds = time.perf_counter() - start
    aligned = cast_like(apply_permutation(spec, result.perms, other_state), other_state)

    x = data_batches(ctx, "align", min(params.subset or 64, 64), 64)[0]
    with torch.no_grad():
        function_error = float((ctx.build_model(other_state)(x) - ctx.build_model(aligned)(x)).abs().max())
    arrays: dict[str, np.ndarray | Tensor] = {f"perm_{g.name}": result.perms[g.name].numpy().astype(np.int64)
                                     for g in spec.groups}
    arrays["objective"] = np.asarray(result.objective, dtype=np.float64)
    arrays["group_size"] = np.array([g.size for g in spec.groups], dtype=np.int64)
    arrays["assignment_seconds"] = np.array([result.assignment_seconds[g.name] for g in spec.groups])
    moved = sum(int((result.perms[g.name] != torch.arange(g.size)).sum()) for g in spec.groups)
    units = sum(g.size for g in spec.groups)
    scalars: dict[str, float] = {
        "objective_start": result.objective[0], "objective": result.objective[-1], "sweeps": float(result.sweeps),
        "n_groups": float(len(spec.groups)), "n_units": float(units), "moved_fraction": moved / max(units, 1),
        "function_error": function_error, "matching_seconds": seconds,
    }
    if params.steps:
        line_arrays, line_scalars = _barriers(ctx, ref_state, other_state, aligned, repair_layers(model, spec), params)
        arrays.update(line_arrays)
        scalars.update(line_scalars)
    ctx.progress(1.0, "done")
    checkpoint = NewCheckpointOutput(tensors=aligned, label=f"aligned to {reference.name} ({params.method})",
                                     run=other.run)
    attrs = {"reference": reference.name, "other": other.name, "method": params.method,
             "groups": ", ".join(g.name for g in spec.groups)}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=[checkpoint], attrs=attrs)


ALIGN = AnalysisSpec(
    name="align",
    version=3,  # 3: the seeded subset is a random one (it was the first `subset` examples)
    run=run_align,
    copies=lambda p, f: 42.0,
    params=AlignParams,
    inputs=(
        Slot("reference", help="the network to match (unchanged)"),
        Slot("other", help="the network whose hidden units are permuted (same architecture)"),
    ),
    resources="any",
    description=(
        "Git Re-Basin (Ainsworth et al. 2023): permute the hidden units of `other` to match `reference` by weight "
        "matching (Alg. 1) or activation matching (§3.1); groups derived from the traced graph. The aligned network "
        "is stored as a checkpoint of other's run.\n\nArrays: perm_<group> (unit i of the aligned network is unit "
        "perm[i] of other), objective (per sweep), group_size, assignment_seconds; with steps > 0: alpha, "
        "{naive,aligned,repaired}_{loss,acc}. Scalars: objective_start, objective, sweeps, n_groups, n_units, "
        "moved_fraction, function_error, matching_seconds, {naive,aligned,repaired}_barrier and _error_barrier."
    ),
)
