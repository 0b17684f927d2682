"""`curve`: fit a low-loss Bezier curve or polygonal chain between two checkpoints (Garipov et al. 2018).

Garipov et al. 2018 ("Loss Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS,
§3) find that two independently trained networks, separated by a high loss barrier on the
straight line between them, are joined by simple curves along which the loss stays low. This
analysis fits such a curve with `lsdb.landscape.curves` (E_{t~U(0,1)} L(φ_θ(t)) by SGD, one t per
minibatch, §3.1, eq. (2)), stores its bends as checkpoints ("curve bend 1", ...; a free end as
"curve start"/"curve end"), and evaluates train and test loss and error at N evenly spaced t along
the curve and along the straight line, as the paper's Fig. 2. With BatchNorm, statistics are
recomputed at each evaluated t (``bn=auto``), and the stored bends carry statistics recomputed at
the bend itself.

Barriers are measured as in `interpolate`: the largest rise of a quantity above the straight
line between its values at the two ends (Frankle et al. 2020, §2). With ``align=weights|activations``
the end's hidden units are first permuted to match the start's (Ainsworth et al. 2023, "Git
Re-Basin"; `Context.aligned`, stored once as an `align` result), so the curve and the line join
the start to the end modulo permutation symmetry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lsdb.landscape import barrier
from lsdb.landscape.curves import (
    CURVES,
    SCHEDULES,
    CurveModel,
    CurveTraining,
    polychain_coefficients,
    train_curve,
)
from lsdb.landscape.swa import batchnorm_modules
from lsdb.plugin import (
    ALIGNMENTS,
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
    param_mask,
)

BN_CHOICES = ("auto", "eval", "recompute")


def optional_input(inputs: Mapping[str, Sequence[InputCheckpoint]], role: str) -> InputCheckpoint | None:
    """The checkpoint of an optional one-checkpoint slot, or None."""
    given = list(inputs.get(role, ()))
    if len(given) > 1:
        raise BadInput(f"input '{role}' takes at most one checkpoint, got {len(given)}")
    return given[0] if given else None


def has_batchnorm(model: nn.Module) -> bool:
    return bool(batchnorm_modules(model))


def resolve_bn(model: nn.Module, mode: str) -> str:
    """``auto`` recomputes BatchNorm statistics when the model has BatchNorm layers (Garipov et al. 2018, §3)."""
    if mode == "auto":
        return "recompute" if has_batchnorm(model) else "eval"
    return mode


def training_inputs(ctx: Context, model: nn.Module, analysis: str, needed: bool = False) -> Tensor:
    """The training inputs; a one-line `BadInput` when they are empty but BatchNorm (or training) needs them."""
    x = ctx.data("train")[0]
    if len(x) == 0 and (needed or has_batchnorm(model)):
        why = "to train on" if needed else "to recompute the statistics of its BatchNorm layers"
        raise BadInput(f"{analysis}: the dataset has no training examples {why}")
    return x


def cast_like(state: Mapping[str, Tensor], like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`state` with each tensor in the dtype of the same tensor in `like` (keeps the inputs' schema)."""
    return {k: v.detach().to(like[k].dtype).cpu() if k in like else v.detach().cpu() for k, v in state.items()}


@dataclass(frozen=True)
class CurveParams:
    """Parameters of `curve`."""

    curve: str = field(default="bezier", metadata={"help": "bezier or polychain (Garipov §3.2)", "choices": CURVES})
    bends: int = field(default=1, metadata={"help": "interior control points (1: the paper's curves)", "min": 1})
    epochs: int = field(default=20, metadata={"help": "training epochs", "min": 1})
    lr: float = field(default=0.05, metadata={"help": "SGD learning rate", "min": 0.0})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum", "min": 0.0, "max": 0.999})
    weight_decay: float = field(default=5e-4, metadata={"help": "ℓ2 penalty wd/2·‖φ(t)‖² at the sampled t", "min": 0.0})
    batch_size: int = field(default=128, metadata={"help": "examples per minibatch (one t each)", "min": 1})
    schedule: str = field(
        default="garipov",
        metadata={"help": "garipov: constant, then linear decay to 1% from 50% to 90% of the epochs; or constant",
                  "choices": SCHEDULES},
    )
    points: int = field(default=21, metadata={"help": "evenly spaced t at which curve and line are evaluated",
                                              "min": 3})
    bn: str = field(default="auto", metadata={"help": "BatchNorm: recompute at every point, eval (the start's "
                                                      "statistics everywhere), or auto (recompute if present)",
                                              "choices": BN_CHOICES})
    fix_start: bool = field(default=True, metadata={"help": "keep the start fixed (else it is trained too)"})
    fix_end: bool = field(default=True, metadata={"help": "keep the end fixed (else it is trained too)"})
    splits: tuple[str, ...] = field(default=SPLITS, metadata={"help": "splits evaluated along curve and line"})
    params: str = field(
        default="",
        metadata={"help": "per-layer selection: parameter-name globs separated by spaces or ';' (e.g. "
                          "transformer.h.*.attn.*; !glob excludes); every other parameter stays at the start's "
                          "value (buffers too)", "key_omit_default": True},
    )
    align: str = field(default="none", metadata={
        "help": "permute the end's hidden units to match the start's first: weights or activations matching "
                "(Ainsworth et al. 2023), or none", "choices": ALIGNMENTS, "key_omit_default": True})

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.splits or any(s not in SPLITS for s in self.splits) or len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits must be distinct names among {', '.join(SPLITS)}, got {list(self.splits)}")


def _ends(ctx: Context, inputs: Mapping[str, Sequence[InputCheckpoint]], params: CurveParams
          ) -> tuple[InputCheckpoint, dict[str, Tensor], dict[str, Tensor]]:
    """(the checkpoint that defines the model, start state, end state); a free missing end is a fresh network."""
    start, end = optional_input(inputs, "start"), optional_input(inputs, "end")
    for fixed, given, role in ((params.fix_start, start, "start"), (params.fix_end, end, "end")):
        if fixed and given is None:
            article = "an" if role == "end" else "a"
            raise BadInput(f"curve: fix_{role}=true needs {article} {role} checkpoint; pass {role}=ID "
                           f"or -p fix_{role}=false")
    base = start or end
    if base is None:
        raise BadInput("curve needs at least one end checkpoint (start=ID and/or end=ID)")
    if params.align != "none" and (start is None or end is None):
        raise BadInput(f"curve: align={params.align} needs both a start and an end checkpoint to align")
    states = {}
    for role, given in (("start", start), ("end", end)):
        if given is not None and role == "end" and start is not None:
            states[role] = ctx.aligned(start, given, params.align)
        elif given is not None:
            states[role] = given.state()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(ctx.seed)
                states[role] = {k: v.detach().cpu() for k, v in ctx.build_model().state_dict().items()}
    return base, states["start"], states["end"]


def run_curve(ctx: Context, inputs: Mapping[str, list[InputCheckpoint]], params: CurveParams) -> AnalysisOutput:
    """Fit the curve (Garipov et al. 2018, §3), store its bends, evaluate it and the straight line."""
    ctx.progress(0.0, "loading checkpoints")
    base, start_state, end_state = _ends(ctx, inputs, params)
    base_state = base.state()
    model = ctx.build_model(base_state)
    x, y = ctx.data("train")
    training_inputs(ctx, model, "curve", needed=True)
    bn = resolve_bn(model, params.bn)
    trainable = None
    if params.params:  # per-layer: only the selected parameters bend; every other stays at the start's value
        trainable = param_mask(ctx.layout(model), params.params, ctx.layout(model).n_params, "curve")
        end_state = {**end_state, **{k: start_state[k] for k in end_state if k not in _selected(model, trainable)}}
    try:
        curve = CurveModel(model, start_state, end_state, params.bends, params.curve, params.fix_start, params.fix_end,
                           trainable)
    except ValueError as exc:
        raise BadInput(f"curve: {exc}") from None
    config = CurveTraining(params.epochs, params.lr, params.momentum, params.weight_decay, params.batch_size,
                           ctx.loss, params.schedule)
    try:
        fit = train_curve(
            curve, x, y, config, ctx.generator(1),
            on_epoch=lambda e, loss: ctx.progress(0.7 * e / params.epochs, f"epoch {e}: objective {loss:.4g}"),
            should_stop=ctx.should_cancel,
        )
    except FloatingPointError as exc:
        raise BadInput(f"curve: {exc}; try a smaller -p lr") from None
    if fit.stopped:
        ctx.check_cancelled()

    ts = np.linspace(0.0, 1.0, params.points)
    control = curve.control_points().detach()
    curve_points = curve.weights(torch.from_numpy(ts)).detach()
    ends = control[[0, -1]]
    line_points = polychain_coefficients(torch.from_numpy(ts), 2).to(ends) @ ends
    arrays: dict[str, np.ndarray] = {"t": ts, "epoch_objective": np.asarray(fit.epoch_loss)}
    scalars: dict[str, float] = {
        "curve_length": curve.length(),
        "line_length": float((control[-1] - control[0]).double().norm()),
        "final_objective": fit.epoch_loss[-1],
    }
    classification = ctx.loss == "cross_entropy"
    n = len(params.splits)
    for i, split in enumerate(params.splits):
        ev = ctx.evaluator(model, split, bn)
        result = ev.at_points(torch.cat([curve_points, line_points]), should_cancel=ctx.should_cancel,
                              progress=ctx.span(0.7 + 0.25 * i / n, 0.7 + 0.25 * (i + 1) / n, f"{split} split"))
        loss = result.loss.double().numpy()
        error = 1.0 - accuracy_of(result, loss.shape)
        for j, path in enumerate(("curve", "line")):
            part = slice(j * len(ts), (j + 1) * len(ts))
            arrays[f"{path}_{split}_loss"] = loss[part]
            scalars.update(_path_scalars(path, split, ts, loss[part], error[part] if classification else None))
            if classification:
                arrays[f"{path}_{split}_error"] = error[part]

    ctx.progress(0.95, "storing the bends")
    bn_batches = x.split(params.batch_size) if has_batchnorm(model) else None
    outputs = []
    names = {0: "curve start", curve.n_points - 1: "curve end"}
    keep = [i for i in range(curve.n_points) if i not in (0, curve.n_points - 1)]
    keep = ([0] if not params.fix_start else []) + keep + ([curve.n_points - 1] if not params.fix_end else [])
    for i in keep:
        state = cast_like(curve.control_state(i, bn_batches), base_state)
        outputs.append(NewCheckpointOutput(tensors=state, label=names.get(i, f"curve bend {i}")))
    attrs = {"curve": params.curve, "bends": params.bends, "bn": bn, "steps": fit.steps, "params": params.params,
             "align": params.align,
             "start": inputs["start"][0].name if inputs.get("start") else "fresh network",
             "end": inputs["end"][0].name if inputs.get("end") else "fresh network"}
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays=arrays, scalars=finite_scalars(scalars), checkpoints=outputs, attrs=attrs)


def _selected(model: nn.Module, mask: Tensor) -> set[str]:
    """Names of the parameters (in ``named_parameters()`` order, as the mask) that `mask` selects."""
    names, offset = set(), 0
    for name, p in model.named_parameters():
        if mask[offset:offset + p.numel()].any():
            names.add(name)
        offset += p.numel()
    return names


def _path_scalars(path: str, split: str, ts: np.ndarray, loss: np.ndarray, error: np.ndarray | None
                  ) -> dict[str, float]:
    """Barrier, maximum and mean of loss (and error) along one path on one split."""
    out: dict[str, float] = {f"{path}_{split}_loss_max": float(np.max(loss)),
                             f"{path}_{split}_loss_mean": float(np.mean(loss))}
    found = barrier(ts, loss)
    if found is not None:
        out[f"{path}_{split}_loss_barrier"] = found[0]
    if error is not None:
        out[f"{path}_{split}_error_max"] = float(np.max(error))
        out[f"{path}_{split}_error_mean"] = float(np.mean(error))
        found = barrier(ts, error)
        if found is not None:
            out[f"{path}_{split}_error_barrier"] = found[0]
    return out


CURVE = AnalysisSpec(
    name="curve",
    version=1,
    run=run_curve,
    copies=lambda p, f: 25.0 + 5 * p.bends,
    params=CurveParams,
    inputs=(
        Slot("start", min=0, max=1, help="the curve's start, φ(0) (required unless fix_start=false)"),
        Slot("end", min=0, max=1, help="the curve's end, φ(1) (required unless fix_end=false)"),
    ),
    resources="any",
    description=(
        "Fit a Bezier curve or polygonal chain of low loss between two checkpoints (Garipov et al. 2018, §3); "
        "its bends become checkpoints.\n\n"
        "Arrays: t, epoch_objective, {curve,line}_{split}_loss and _error at each t. Scalars: "
        "{curve,line}_{split}_{loss,error}_{barrier,max,mean}, curve_length, line_length, final_objective. "
        "align=weights|activations permutes the end to match the start first (Git Re-Basin)."
    ),
)
