"""A test plugin: small analyses with answers that are easy to check independently."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lsdb.analyses import AnalysisOutput, AnalysisSpec, NewCheckpointOutput, Slot
from lsdb.hookspecs import hookimpl


@dataclass(frozen=True)
class LossParams:
    split: str = field(default="train", metadata={"choices": ("train", "test"), "help": "which split"})
    scale: float = field(default=1.0, metadata={"min": 0.0, "help": "multiply the weights by this"})


def loss_at(ctx, inputs, params: LossParams) -> AnalysisOutput:  # type: ignore[no-untyped-def]
    ckpt = inputs["theta"][0]
    state = {k: v * params.scale if v.is_floating_point() else v for k, v in ckpt.state().items()}
    model = ctx.build_model(state)
    x, y = ctx.data(params.split)
    with torch.no_grad():
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y).item()
        acc = (out.argmax(1) == y).double().mean().item()
    ctx.progress(1.0, "done")
    return AnalysisOutput(arrays={"logits": out[:5]}, scalars={"loss": loss, "acc": acc})


def average(ctx, inputs, params) -> AnalysisOutput:  # type: ignore[no-untyped-def]
    states = [c.state() for c in inputs["members"]]
    avg = {k: sum(s[k] for s in states) / len(states) for k in states[0]}
    return AnalysisOutput(
        scalars={"n": float(len(states))}, checkpoints=[NewCheckpointOutput(tensors=avg, label="average")]
    )


LOSS_AT = AnalysisSpec(
    name="loss-at",
    version=1,
    run=loss_at,
    params=LossParams,
    inputs=(Slot("theta"),),
    description="Loss and accuracy at one checkpoint.",
)
AVERAGE = AnalysisSpec(
    name="average",
    version=1,
    run=average,
    inputs=(Slot("members", min=2, max=None),),
    description="Average of checkpoints, stored as a new checkpoint.",
    needs_data=False,
)


@hookimpl
def register_analyses(register) -> None:  # type: ignore[no-untyped-def]
    register(LOSS_AT)
    register(AVERAGE)
