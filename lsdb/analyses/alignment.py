"""Permutation alignment for any analysis: what `Context.aligned` computes when no catalog caches it.

``-p align=weights|activations`` on `interpolate`, `curve`, `plane`, `tunnel`, `mconnector` and
`ensemble` runs them modulo permutation symmetry: every input after the first has its hidden units
permuted to match the first (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin", ICLR: weight
matching, Alg. 1, or activation matching, §3.1; the math is `lsdb.landscape.matching` and
`lsdb.landscape.permutations`). The runner gives the context an `AlignmentProvider` that stores each
alignment once as a result of the `align` analysis and reuses it (`lsdb.analyses.alignment_cache`);
a context without one (direct calls, tests of the math) computes it here, with the `align`
analysis' defaults, so both give the same permutation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Generator, Tensor, nn

    from lsdb.analyses.context import Context, InputCheckpoint
    from lsdb.landscape.permutations import PermutationSpec

__all__ = ["ALIGNMENTS", "AlignmentProvider", "align_in_process", "apply_alignment", "seeded_subset"]

#: The values of an analysis' ``align`` parameter: no alignment, weight matching, activation matching.
ALIGNMENTS = ("none", "weights", "activations")
#: The `align` analysis' defaults: weight matching's most sweeps, activation matching's examples and batch size.
MAX_SWEEPS, SUBSET, BATCH_SIZE = 100, 1024, 256
#: Offset of `Context.generator` that draws activation matching's subset (the `align` analysis' too).
SUBSET_SEED_OFFSET = 18


class AlignmentProvider(Protocol):
    """How a context gets `other`'s weights permuted to match `reference` (method ``weights`` or
    ``activations``): a fresh dict of CPU tensors in `other`'s dtypes."""

    def __call__(self, ctx: Context, reference: InputCheckpoint, other: InputCheckpoint,
                 method: str) -> dict[str, Tensor]: ...


def seeded_subset(x: Tensor, n: int, generator: Generator) -> Tensor:
    """`n` rows of `x` drawn at random by `generator`, in their original order (all rows when `n` is 0
    or covers them): the same rows for the same seed, different rows for another."""
    import torch

    if not 0 < n < len(x):
        return x
    keep = torch.randperm(len(x), generator=generator)[:n].sort().values
    return x[keep.to(x.device)]


def align_in_process(ctx: Context, reference: InputCheckpoint, other: InputCheckpoint,
                     method: str) -> dict[str, Tensor]:
    """`other`'s state permuted to match `reference` by weight or activation matching (Ainsworth et al.
    2023, Alg. 1 / §3.1), computed now; a one-line `BadInput` when the model cannot be traced."""
    from lsdb.errors import BadInput
    from lsdb.landscape.matching import activation_matching, weight_matching

    if method not in ALIGNMENTS[1:]:
        raise BadInput(f"unknown alignment '{method}'; available: {', '.join(ALIGNMENTS)}")
    ref_state, other_state = reference.state(), other.state()
    model = ctx.build_model(ref_state)
    spec = _spec(ctx, model)
    try:
        if method == "weights":
            perms = weight_matching(spec, ref_state, other_state, max_sweeps=MAX_SWEEPS, seed=ctx.seed).perms
        else:
            x = ctx.data("train")[0]
            batches = seeded_subset(x, SUBSET, ctx.generator(SUBSET_SEED_OFFSET)).split(BATCH_SIZE)
            perms = activation_matching(spec, model, ctx.build_model(other_state), batches).perms
    except ValueError as exc:
        raise BadInput(f"align: {exc}") from None
    return _permuted(spec, perms, other_state)


def apply_alignment(ctx: Context, reference: InputCheckpoint, other: InputCheckpoint,
                    perms: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`other`'s state with stored permutations applied (group name -> ``perm``: unit i of the result
    is unit ``perm[i]`` of `other`), the groups traced from `reference`'s model."""
    from lsdb.errors import BadInput

    spec = _spec(ctx, ctx.build_model(reference.state()))
    missing = sorted({g.name for g in spec.groups} - set(perms))
    if missing:
        raise BadInput(f"align: the stored alignment has no permutation of group '{missing[0]}'")
    return _permuted(spec, {g.name: perms[g.name] for g in spec.groups}, other.state())


def _spec(ctx: Context, model: nn.Module) -> PermutationSpec:
    from lsdb.errors import BadInput
    from lsdb.landscape.permutations import permutation_spec

    x = ctx.data("train")[0]
    if len(x) == 0:
        raise BadInput("align: the dataset has no training examples (needed to trace the model and match)")
    try:
        return permutation_spec(model, x[:2])
    except ValueError as exc:
        raise BadInput(f"align: {exc}") from None


def _permuted(spec: PermutationSpec, perms: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    from lsdb.landscape.permutations import apply_permutation

    aligned = apply_permutation(spec, dict(perms), dict(state))
    return {k: v.detach().to(state[k].dtype).cpu() for k, v in aligned.items()}
