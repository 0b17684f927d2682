"""`ensemble`: any set of checkpoints as an ensemble — error, NLL, calibration and pairwise disagreement.

The ensemble predicts the mean of its members' softmax outputs (Garipov et al. 2018, §5; Huang et
al. 2017; Lakshminarayanan et al. 2017). Reported: the error and NLL of each member and of the
ensembles of the first k members (k = 1..M, in the order given), the expected calibration error
over equal-width confidence bins (Guo et al. 2017, §2, eq. (3)) with the ensemble's reliability
diagram, and the fraction of examples on which each pair of members disagrees. The helpers here
(member probabilities, growing-ensemble arrays) are shared with `fge` and `swa`.

Disagreement (like every metric of the members' outputs) is invariant to permuting a member's
hidden units, so ``align`` cannot change it. What alignment does change is the members' weight
geometry, reported too: their pairwise ℓ2 distances and cosine similarities over the parameters.
With ``align=weights|activations`` every member after the first is permuted to match the first
(Ainsworth et al. 2023, "Git Re-Basin"; `Context.aligned`, stored once as an `align` result), so
these measure how far apart the members are modulo permutation symmetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape import Evaluator
from lsdb.landscape.ensembles import (
    DEFAULT_BINS,
    calibration_bins,
    disagreement_matrix,
    ensemble_metrics,
    growing_ensemble,
    mean_disagreement,
    weight_geometry,
)
from lsdb.plugin import (
    ALIGNMENTS,
    SPLITS,
    AnalysisOutput,
    AnalysisSpec,
    BadInput,
    Context,
    InputCheckpoint,
    Slot,
    finite_scalars,
)
from lsdb_connectivity.curve import training_inputs


def require_classification(ctx: Context, analysis: str) -> None:
    """Ensembles average class probabilities: a regression loss is a one-line `BadInput`."""
    if ctx.loss != "cross_entropy":
        raise BadInput(f"{analysis} needs a classification task (loss cross_entropy), got loss '{ctx.loss}'")


def member_probabilities(ctx: Context, model: nn.Module, points: Tensor, split: str, bn: str = "eval",
                         start: float = 0.0, stop: float = 1.0) -> tuple[Tensor, Tensor]:
    """(softmax outputs (M, N, C) of the networks at `points` (M, P with buffers), labels (N,)) on `split`."""
    x, y = ctx.data(split)
    train_x = training_inputs(ctx, model, "ensemble") if bn == "recompute" else None
    ev = Evaluator(model, x, y, loss="cross_entropy", bn=bn, train_x=train_x,  # type: ignore[arg-type]
                   device=ctx.device, dtype=ctx.dtype, outputs="probs")
    result = ev.at_points(points, should_cancel=ctx.should_cancel,
                          progress=ctx.span(start, stop, f"members on the {split} split"))
    assert result.outputs is not None
    return result.outputs, y.cpu()


def ensemble_output(member_probs: Tensor, y: Tensor, bins: int, per_size_scalars: bool = False
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Arrays and scalars of members, growing ensembles, calibration and disagreement."""
    m = len(member_probs)
    members = [ensemble_metrics(p, y, bins) for p in member_probs]
    growing = growing_ensemble(member_probs, y, bins)
    full = growing[-1]
    conf, acc, count = calibration_bins(member_probs.mean(dim=0), y, bins)
    arrays = {
        "member_error": np.array([e.error for e in members]),
        "member_nll": np.array([e.nll for e in members]),
        "member_ece": np.array([e.ece for e in members]),
        "ensemble_error": np.array([g.error for g in growing]),
        "ensemble_nll": np.array([g.nll for g in growing]),
        "ensemble_ece": np.array([g.ece for g in growing]),
        "disagreement": disagreement_matrix(member_probs).numpy(),
        "reliability_confidence": conf.numpy(),
        "reliability_accuracy": acc.numpy(),
        "reliability_count": count.numpy(),
    }
    scalars = {
        "n_members": float(m),
        "ensemble_error": full.error,
        "ensemble_nll": full.nll,
        "ensemble_ece": full.ece,
        "mean_member_error": float(arrays["member_error"].mean()),
        "best_member_error": float(arrays["member_error"].min()),
        "mean_member_nll": float(arrays["member_nll"].mean()),
        "mean_member_ece": float(arrays["member_ece"].mean()),
        "mean_disagreement": mean_disagreement(member_probs),
    }
    if per_size_scalars:
        for k in range(m):
            scalars[f"ensemble_error_{k + 1}"] = growing[k].error
            scalars[f"ensemble_nll_{k + 1}"] = growing[k].nll
            scalars[f"member_error_{k + 1}"] = members[k].error
    return arrays, scalars


@dataclass(frozen=True)
class EnsembleParams:
    """Parameters of `ensemble`."""

    split: str = field(default="test", metadata={"help": "split the ensemble is judged on", "choices": SPLITS})
    bins: int = field(default=DEFAULT_BINS, metadata={"help": "equal-width confidence bins of the ECE", "min": 1})
    bn: str = field(default="eval", metadata={"help": "BatchNorm: eval (each member's statistics) or recompute",
                                              "choices": ("eval", "recompute")})
    align: str = field(default="none", metadata={
        "help": "permute every member's hidden units to match the first's first (changes the weight distances and "
                "cosines, not the outputs): weights or activations matching (Ainsworth et al. 2023), or none",
        "choices": ALIGNMENTS, "key_omit_default": True})


def run_ensemble(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: EnsembleParams
                 ) -> AnalysisOutput:
    """Judge the members as an ensemble of softmax outputs (mean of probabilities)."""
    members = list(inputs.get("members", ()))
    if len(members) < 2:
        raise BadInput(f"ensemble needs at least 2 members, got {len(members)}: an ensemble of one is its member")
    require_classification(ctx, "ensemble")
    ctx.progress(0.0, "loading checkpoints")
    model = ctx.build_model(members[0].state())
    layout = ctx.layout(model)
    if params.align != "none":
        ctx.progress(0.0, f"{params.align} matching")
    points = torch.stack([ctx.point(layout, c, align=params.align, reference=members[0]) for c in members])
    probs, y = member_probabilities(ctx, model, points, params.split, params.bn, 0.0, 0.9)
    arrays, scalars = ensemble_output(probs, y, params.bins)
    distance, cosine = weight_geometry(points[:, :layout.n_params])
    pairs = torch.triu_indices(len(members), len(members), offset=1)
    arrays["weight_distance"], arrays["weight_cosine"] = distance.numpy(), cosine.numpy()
    scalars["mean_weight_distance"] = float(distance[pairs[0], pairs[1]].mean())
    scalars["mean_weight_cosine"] = float(cosine[pairs[0], pairs[1]].mean())
    ctx.progress(1.0, "done")
    attrs = {"members": ", ".join(c.name for c in members), "split": params.split, "align": params.align}
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), attrs=attrs)


ENSEMBLE = AnalysisSpec(
    name="ensemble",
    version=1,
    run=run_ensemble,
    copies=lambda p, f: 6.0 + 3 * f.n_inputs,
    params=EnsembleParams,
    inputs=(Slot("members", min=2, max=None, help="the networks of the ensemble (same architecture)"),),
    resources="any",
    description=(
        "Any set of checkpoints as an ensemble (mean of softmax outputs): error, NLL, ECE (Guo et al. 2017) and "
        "pairwise disagreement.\n\nArrays: member_{error,nll,ece} (M), ensemble_{error,nll,ece} of the first k "
        "members (M), disagreement (M, M), weight_distance and weight_cosine (M, M: ℓ2 distance and cosine "
        "similarity of the parameters), reliability_{confidence,accuracy,count} (bins). Scalars: n_members, "
        "ensemble_{error,nll,ece}, mean_member_{error,nll,ece}, best_member_error, mean_disagreement, "
        "mean_weight_distance, mean_weight_cosine. Disagreement is invariant to permuting hidden units; "
        "align=weights|activations permutes every member to match the first, which changes the weight metrics."
    ),
)
