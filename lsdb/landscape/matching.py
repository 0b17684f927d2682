"""Matching the hidden units of two networks: weight matching and activation matching.

Ainsworth, Hayase & Srinivasa 2023 ("Git Re-Basin", ICLR):

* **Weight matching** (§3.2, Algorithm 1): maximize Σ_ℓ ⟨W_ℓ^A, P_ℓ W_ℓ^B P_{ℓ-1}ᵀ⟩ over the
  permutations by coordinate descent — for one group ℓ at a time, with all others fixed, the
  objective is linear in P_ℓ, ⟨P_ℓ, Σ W^A (W^B with its other axes permuted)ᵀ⟩, a linear
  assignment problem solved exactly (``scipy.optimize.linear_sum_assignment``). Groups are
  visited in a random order each sweep until a sweep changes nothing. A step is kept only when
  it raises the objective (by the assignment's gain, Σ_i C[i, new(i)] − Σ_i C[i, old(i)]), so
  the objective never decreases; a tensor with two axes in one group makes the objective
  quadratic in that permutation, and such a step is measured on the tensors and may be refused.
* **Activation matching** (§3.1): run both networks on the same inputs and, for each group,
  match unit i of A to the unit j of B that maximizes Σ_i corr(z_i^A, z_{π(i)}^B), the Pearson
  correlation of their activations over the examples (and spatial positions); one assignment
  per group. The statistics are streamed batch by batch (only C×C sums are kept). Units a ReLU
  leaves constant on the data correlate with nothing; such ties are broken by the correlation of
  the pre-activations (the producing layers' outputs), weighted by `TIE_BREAK`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from lsdb.landscape.permutations import AxisRef, PermutationSpec, expand, invert, permute_tensor


@dataclass
class MatchResult:
    """Permutations (per group) that align B to A, and how the search went.

    `objective[k]` is Σ ⟨W^A, π(W^B)⟩ over permuted tensors after sweep k (k = 0: the start) for
    weight matching, or Σ of matched correlations for activation matching (one entry).
    `assignment_seconds` is the time spent building and solving each group's assignment problems.
    """

    perms: dict[str, Tensor]
    objective: list[float]
    sweeps: int = 0
    assignment_seconds: dict[str, float] = field(default_factory=dict)


def _moved(t: Tensor, ref: AxisRef, size: int) -> Tensor:
    """`t` with `ref.axis` first, as a (size, -1) matrix whose rows are the group's units."""
    return t.movedim(ref.axis, 0).reshape(size, -1)


def _solve(cost: Tensor) -> Tensor:
    """The permutation maximizing Σ_i cost[i, perm[i]]."""
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy(), maximize=True)
    perm = torch.empty(len(rows), dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return perm


class _WeightMatcher:
    def __init__(self, spec: PermutationSpec, state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor]) -> None:
        self.spec = spec
        self.entries = spec.axes_of()
        for name in self.entries:
            if name not in state_a or name not in state_b or state_a[name].shape != state_b[name].shape:
                raise ValueError(f"the two networks differ at '{name}'")
        self.a = {n: state_a[n].detach().double().cpu() for n in self.entries}
        self.b = {n: state_b[n].detach().double().cpu() for n in self.entries}
        self.tensors_of = {g.name: sorted({r.name for r in g.axes}) for g in spec.groups}
        #: groups with a tensor that has two axes in the group: the objective is quadratic in its permutation
        self.quadratic = {g.name for g in spec.groups if len({r.name for r in g.axes}) < len(g.axes)}

    def permuted_b(self, name: str, perms: Mapping[str, Tensor], skip: tuple[str, AxisRef] | None = None) -> Tensor:
        return permute_tensor(self.b[name], [(ref, perms[g]) for g, ref in self.entries[name] if (g, ref) != skip])

    def tensor_objective(self, names: Iterable[str], perms: Mapping[str, Tensor]) -> float:
        return float(sum(float((self.a[n] * self.permuted_b(n, perms)).sum()) for n in names))

    def cost(self, group: str, perms: Mapping[str, Tensor]) -> Tensor:
        size = self.spec.group(group).size
        cost = torch.zeros(size, size, dtype=torch.float64)
        for ref in self.spec.group(group).axes:
            wa = _moved(self.a[ref.name], ref, size)
            wb = _moved(self.permuted_b(ref.name, perms, skip=(group, ref)), ref, size)
            cost += wa @ wb.T
        return cost


def weight_matching(spec: PermutationSpec, state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor], *,
                    max_sweeps: int = 100, seed: int = 0, init: Mapping[str, Tensor] | None = None) -> MatchResult:
    """Ainsworth et al. 2023, Algorithm 1: permutations of B's units that maximize Σ_ℓ ⟨W^A_ℓ, π(W^B)_ℓ⟩.

    Coordinate descent over the groups in a random order per sweep (seeded), each step a linear
    assignment; stops when a sweep changes no permutation or after `max_sweeps`. The objective
    after each sweep is recorded and never decreases. `ValueError` when the states do not fit.
    """
    matcher = _WeightMatcher(spec, state_a, state_b)
    perms = {k: v.clone() for k, v in (init or spec.identity()).items()}
    names = list(matcher.entries)
    objective = [matcher.tensor_objective(names, perms)]
    seconds = {g.name: 0.0 for g in spec.groups}
    gen = torch.Generator().manual_seed(seed)
    sweeps = 0
    for _ in range(max_sweeps):
        sweeps += 1
        changed = False
        for i in torch.randperm(len(spec.groups), generator=gen).tolist():
            group = spec.groups[i].name
            start = time.perf_counter()
            cost = matcher.cost(group, perms)
            new = _solve(cost)
            seconds[group] += time.perf_counter() - start
            if torch.equal(new, perms[group]):
                continue
            trial = {**perms, group: new}
            if group in matcher.quadratic:  # the assignment's gain is not the objective's: measure it
                touched = matcher.tensors_of[group]
                before = matcher.tensor_objective(touched, perms)
                after = matcher.tensor_objective(touched, trial)
            else:  # linear in this permutation: the objective changes by exactly the assignment's gain
                rows = torch.arange(len(new))
                before, after = float(cost[rows, perms[group]].sum()), float(cost[rows, new].sum())
            if after > before + 1e-12 * max(1.0, abs(before)):
                perms, changed = trial, True
        objective.append(matcher.tensor_objective(names, perms))
        if not changed:
            break
    return MatchResult(perms=perms, objective=objective, sweeps=sweeps, assignment_seconds=seconds)


#: Weight of the pre-activation correlations in activation matching: only breaks ties (< 1 / max size²).
TIE_BREAK = 1e-6


class _Moments:
    """Streaming first and second moments of two aligned activation matrices (rows: samples)."""

    def __init__(self, channels: int) -> None:
        self.n = 0
        self.sa = torch.zeros(channels, dtype=torch.float64)
        self.sb = torch.zeros(channels, dtype=torch.float64)
        self.saa = torch.zeros(channels, dtype=torch.float64)
        self.sbb = torch.zeros(channels, dtype=torch.float64)
        self.sab = torch.zeros(channels, channels, dtype=torch.float64)

    def add(self, za: Tensor, zb: Tensor) -> None:
        a, b = _rows(za), _rows(zb)
        self.n += len(a)
        self.sa += a.sum(0)
        self.sb += b.sum(0)
        self.saa += (a * a).sum(0)
        self.sbb += (b * b).sum(0)
        self.sab += a.T @ b

    def correlation(self, eps: float = 1e-12) -> Tensor:
        mean_a, mean_b = self.sa / self.n, self.sb / self.n
        std_a = (self.saa / self.n - mean_a**2).clamp_min(0).sqrt()
        std_b = (self.sbb / self.n - mean_b**2).clamp_min(0).sqrt()
        cov = self.sab / self.n - torch.outer(mean_a, mean_b)
        return cov / (torch.outer(std_a, std_b) + eps)


def _rows(z: Tensor) -> Tensor:
    """(N, C, ...) activations as (N·..., C) float64 rows."""
    return z.detach().movedim(1, -1).reshape(-1, z.shape[1]).double().cpu()


class _Recorder(fx.Interpreter):
    """Runs a traced graph and keeps the values of the named nodes."""

    def __init__(self, gm: fx.GraphModule, keep: set[str]) -> None:
        super().__init__(gm)
        self.keep = keep
        self.seen: dict[str, Tensor] = {}

    def run_node(self, n: fx.Node) -> object:
        value = super().run_node(n)
        if n.name in self.keep and isinstance(value, Tensor):
            self.seen[n.name] = value
        return value


def record_activations(spec: PermutationSpec, model: nn.Module, x: Tensor, nodes: set[str]) -> dict[str, Tensor]:
    """The values of the traced `nodes` when `model` (of the spec's architecture) runs on `x`."""
    recorder = _Recorder(fx.GraphModule(model, spec.graph), nodes)
    with torch.no_grad():
        recorder.run(x)
    return recorder.seen


def activation_correlations(spec: PermutationSpec, model_a: nn.Module, model_b: nn.Module,
                            batches: Iterable[Tensor]) -> dict[str, Tensor]:
    """Per group, the (C, C) correlation between A's and B's units, summed over the group's probe nodes.

    Plus `TIE_BREAK` times the correlation of the pre-activations where they are other nodes.
    `batches` are streamed; both models run in the mode they are in (use eval mode).
    """
    probes = {p: g for g in spec.groups for p in g.probes}
    weights = {p: 1.0 for p in probes}
    for g in spec.groups:
        for p in g.pre_probes:
            if p not in probes:
                probes[p], weights[p] = g, TIE_BREAK
    moments: dict[str, _Moments] = {}
    for xb in batches:
        za = record_activations(spec, model_a, xb, set(probes))
        zb = record_activations(spec, model_b, xb, set(probes))
        for node, value in za.items():
            moments.setdefault(node, _Moments(value.shape[1])).add(value, zb[node])
    if not moments:
        raise ValueError("activation matching saw no batch: the data subset is empty")
    out: dict[str, Tensor] = {}
    for node, m in moments.items():
        group, corr = probes[node].name, weights[node] * m.correlation()
        out[group] = out[group] + corr if group in out else corr
    return out


def activation_matching(spec: PermutationSpec, model_a: nn.Module, model_b: nn.Module,
                        batches: Iterable[Tensor]) -> MatchResult:
    """Ainsworth et al. 2023, §3.1: per group, the assignment maximizing the summed activation correlation."""
    corr = activation_correlations(spec, model_a, model_b, batches)
    perms: dict[str, Tensor] = {}
    seconds: dict[str, float] = {}
    total = 0.0
    for g in spec.groups:
        start = time.perf_counter()
        c = corr.get(g.name)
        if c is None:
            raise ValueError(f"group '{g.name}' has no activation to match on")
        perms[g.name] = _solve(c)
        seconds[g.name] = time.perf_counter() - start
        total += float(c[torch.arange(g.size), perms[g.name]].sum())
    return MatchResult(perms=perms, objective=[total], sweeps=1, assignment_seconds=seconds)


def weight_objective(spec: PermutationSpec, state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor],
                     perms: Mapping[str, Tensor]) -> float:
    """Σ over the permuted tensors of ⟨W^A, π(W^B)⟩ (what weight matching maximizes)."""
    matcher = _WeightMatcher(spec, state_a, state_b)
    return matcher.tensor_objective(list(matcher.entries), perms)


def perms_to_array(spec: PermutationSpec, perms: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Permutations as int64 NumPy arrays keyed by group name (how an analysis stores them)."""
    return {g.name: perms[g.name].cpu().numpy().astype(np.int64) for g in spec.groups}


def recovered(perms: Mapping[str, Tensor], truth: Mapping[str, Tensor]) -> bool:
    """Whether `perms` undo `truth` exactly (B = π_truth(A) matched back gives perm = truth⁻¹ ∘ ... = inverse)."""
    return all(torch.equal(perms[k], invert(v)) for k, v in truth.items())


__all__ = [
    "MatchResult",
    "activation_correlations",
    "activation_matching",
    "expand",
    "perms_to_array",
    "record_activations",
    "recovered",
    "weight_matching",
    "weight_objective",
]
