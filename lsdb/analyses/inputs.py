"""Resolving what a user typed as inputs (``12``, ``run:step``, ``run:last``, ``run``,
``role=token``) into checkpoints, slot by slot, with one-line errors for every mismatch."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsdb.analyses.contract import AnalysisSpec, Slot
from lsdb.catalog import CatalogDB, CheckpointRecord
from lsdb.errors import BadInput, NotFound

_ROLE_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


@dataclass(frozen=True)
class Token:
    text: str
    role: str | None  # an explicit role=token

    @property
    def is_checkpoint(self) -> bool:
        return self.text.isdigit() or ":" in self.text


def _parse(tokens: list[str | int]) -> list[Token]:
    out = []
    for raw in tokens:
        text = str(raw).strip()
        match = _ROLE_TOKEN.match(text)
        out.append(Token(match.group(2), match.group(1)) if match else Token(text, None))
    return out


def resolve_checkpoint(catalog: CatalogDB, text: str, project: str | None = None) -> CheckpointRecord:
    """``12`` (id), ``run:step``, ``run:first``, ``run:last`` or a bare run name (its last checkpoint)."""
    if text.isdigit():
        return catalog.checkpoints.get(int(text))
    run, _, step = text.rpartition(":") if ":" in text else (text, "", "last")
    trajectory = trajectory_of(catalog, run, project)
    if step in ("last", "final"):
        return trajectory[-1]
    if step == "first":
        return trajectory[0]
    try:
        wanted = int(step)
    except ValueError:
        raise BadInput(f"input '{text}': expected run:STEP, run:first or run:last") from None
    for ckpt in trajectory:
        if ckpt.step == wanted:
            return ckpt
    steps = ", ".join(str(c.step) for c in trajectory[:10])
    raise NotFound(
        f"run '{run}' has no checkpoint at step {wanted}; steps: {steps}{'...' if len(trajectory) > 10 else ''}"
    )


def trajectory_of(catalog: CatalogDB, run: str, project: str | None = None) -> list[CheckpointRecord]:
    """A run's own checkpoints by step (those produced by analyses are left out)."""
    ckpts = [c for c in catalog.checkpoints.list(run, project) if c.produced_by is None]
    if not ckpts:
        raise BadInput(f"run '{run}' has no checkpoints; ingest some first")
    return ckpts


def resolve_inputs(
    catalog: CatalogDB, spec: AnalysisSpec, tokens: list[str | int], project: str | None = None
) -> dict[str, list[CheckpointRecord]]:
    """Assign tokens to the spec's slots in order (or by ``role=``) and resolve them."""
    parsed = _parse(tokens)
    slots = {s.role: s for s in spec.inputs}
    assigned: dict[str, list[Token]] = {s.role: [] for s in spec.inputs}
    positional = []
    for tok in parsed:
        if tok.role is not None:
            if tok.role not in slots:
                raise BadInput(f"analysis '{spec.name}' has no input '{tok.role}'; inputs: {_describe(spec)}")
            assigned[tok.role].append(tok)
        else:
            positional.append(tok)
    queue = list(positional)
    for slot in spec.inputs:
        if slot.kind == "trajectory":
            if queue and not queue[0].is_checkpoint and not assigned[slot.role] and _wants_more(slot, assigned):
                assigned[slot.role].append(queue.pop(0))
            continue
        while queue and _wants_more(slot, assigned):
            optional = len(assigned[slot.role]) >= slot.min
            if optional and not queue[0].is_checkpoint and _later_trajectory(spec, slot):
                break  # a bare run name after the required inputs is meant for the trajectory
            assigned[slot.role].append(queue.pop(0))
    if queue:
        raise BadInput(f"analysis '{spec.name}' got {len(parsed)} inputs, too many; it takes {_describe(spec)}")
    resolved: dict[str, list[CheckpointRecord]] = {}
    for slot in spec.inputs:
        toks = assigned[slot.role]
        if slot.kind == "trajectory":
            if len(toks) > 1:
                raise BadInput(f"input '{slot.role}' takes one run name, got {len(toks)}")
            ckpts = trajectory_of(catalog, toks[0].text, project) if toks else []
        else:
            ckpts = [resolve_checkpoint(catalog, t.text, project) for t in toks]
        if len(ckpts) < slot.min or (slot.max is not None and len(ckpts) > slot.max):
            raise BadInput(
                f"analysis '{spec.name}' needs {_count(slot)} for input '{slot.role}', got {len(ckpts)}; "
                f"it takes {_describe(spec)}"
            )
        resolved[slot.role] = ckpts
    return resolved


def _wants_more(slot: Slot, assigned: dict[str, list[Token]]) -> bool:
    return slot.max is None or len(assigned[slot.role]) < slot.max


def _later_trajectory(spec: AnalysisSpec, slot: Slot) -> bool:
    after = spec.inputs[spec.inputs.index(slot) + 1 :]
    return any(s.kind == "trajectory" for s in after)


def _count(slot: Slot) -> str:
    unit = "run" if slot.kind == "trajectory" else "checkpoint"
    if slot.max == slot.min:
        return f"{slot.min} {unit}{'s' if slot.min != 1 else ''}"
    if slot.max is None:
        return f"at least {slot.min} {unit}s"
    return f"{slot.min} to {slot.max} {unit}s"


def _describe(spec: AnalysisSpec) -> str:
    if not spec.inputs:
        return "no inputs"
    return ", ".join(f"{s.role} ({_count(s)})" for s in spec.inputs)
