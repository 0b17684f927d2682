"""Weight-space merges of networks of one architecture: average, task arithmetic, TIES and SLERP.

All functions work on state dicts (name → tensor) restricted to the `names` given (the
parameters to merge); tensors outside `names` are taken from the first network (the caller
recomputes BatchNorm statistics afterwards where there are any). The arithmetic is float64.

* **Linear average** (model soups, Wortsman et al. 2022; Izmailov et al. 2018): θ = Σ_i w_i θ_i.
* **Task arithmetic** (Ilharco et al. 2023, "Editing Models with Task Arithmetic", ICLR, §2):
  task vectors τ_i = θ_i − θ_base, merged as θ = θ_base + λ Σ_i τ_i.
* **TIES-merging** (Yadav et al. 2023, "TIES-Merging: Resolving Interference When Merging
  Models", NeurIPS, §4, Algorithm 1) on the flattened task vectors: (1) *trim* — keep the
  top-k% entries of each τ_t by magnitude, zero the rest; (2) *elect sign* — γ^p = sgn(Σ_t τ̂_t^p);
  (3) *disjoint merge* — τ_m^p = mean of the τ̂_t^p whose sign agrees with γ^p (zeros excluded);
  θ = θ_base + λ τ_m.
* **SLERP** (Shoemake 1985; as mergekit applies it to weights): along the great circle between
  two vectors, slerp(a, b; t) = sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b with
  cos Ω = ⟨a, b⟩ / (‖a‖‖b‖); the straight line when the vectors are (anti)parallel within `eps`.
  With a base it interpolates the task vectors and adds the base back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

State = Mapping[str, Tensor]

#: Below this sin Ω, SLERP falls back to the straight line (the vectors are (anti)parallel).
SLERP_EPS = 1e-8


def _check(states: Sequence[State], names: Sequence[str]) -> None:
    if not states:
        raise ValueError("nothing to merge: no networks given")
    for name in names:
        shapes = {tuple(s[name].shape) if name in s else None for s in states}
        if len(shapes) != 1 or None in shapes:
            raise ValueError(f"the networks to merge differ at '{name}'")


def flatten(state: State, names: Sequence[str]) -> Tensor:
    """The tensors `names` of `state` as one float64 vector."""
    return torch.cat([state[n].detach().double().reshape(-1).cpu() for n in names])


def unflatten(vector: Tensor, like: State, names: Sequence[str]) -> dict[str, Tensor]:
    """`like` with the tensors `names` replaced by consecutive slices of `vector` (cast to their dtypes)."""
    out = dict(like)
    offset = 0
    for n in names:
        t = like[n]
        out[n] = vector[offset:offset + t.numel()].reshape(t.shape).to(t.dtype)
        offset += t.numel()
    if offset != len(vector):
        raise ValueError(f"vector of {len(vector)} entries does not fit {offset} entries")
    return out


def linear_average(states: Sequence[State], names: Sequence[str], weights: Sequence[float] | None = None
                   ) -> dict[str, Tensor]:
    """θ = Σ_i w_i θ_i (equal weights by default; weights need not sum to one)."""
    _check(states, names)
    w = [1.0 / len(states)] * len(states) if weights is None else list(weights)
    if len(w) != len(states):
        raise ValueError(f"{len(w)} weights for {len(states)} networks")
    merged = sum(wi * flatten(s, names) for wi, s in zip(w, states, strict=True))
    assert isinstance(merged, Tensor)
    return unflatten(merged, states[0], names)


def task_vectors(base: State, states: Sequence[State], names: Sequence[str]) -> Tensor:
    """(T, P) float64: τ_t = θ_t − θ_base (Ilharco et al. 2023, eq. 1)."""
    _check([base, *states], names)
    theta0 = flatten(base, names)
    return torch.stack([flatten(s, names) - theta0 for s in states])


def task_arithmetic(base: State, states: Sequence[State], names: Sequence[str], scale: float = 1.0
                    ) -> dict[str, Tensor]:
    """θ = θ_base + λ Σ_t τ_t (Ilharco et al. 2023, §2, "addition")."""
    tau = task_vectors(base, states, names)
    return unflatten(flatten(base, names) + scale * tau.sum(0), base, names)


def ties_trim(tau: Tensor, density: float) -> Tensor:
    """Step 1, trim: keep each row's ⌈density · P⌉ largest-magnitude entries, zero the others (ties: lowest index)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rows = tau.reshape(len(tau), -1) if tau.dim() > 1 else tau.reshape(1, -1)
    k = math.ceil(density * rows.shape[1])
    out = torch.zeros_like(rows)
    order = torch.sort(rows.abs(), dim=1, descending=True, stable=True).indices[:, :k]
    out.scatter_(1, order, rows.gather(1, order))
    return out.reshape(tau.shape)


def ties_elect(trimmed: Tensor) -> Tensor:
    """Step 2, elect sign: γ^p = sgn(Σ_t τ̂_t^p) (the sign of the larger total mass), in {−1, 0, 1}."""
    return torch.sign(trimmed.sum(0))


def ties_disjoint_merge(trimmed: Tensor, sign: Tensor) -> Tensor:
    """Step 3, disjoint merge: τ_m^p = mean over {t : sgn(τ̂_t^p) = γ^p ≠ 0} of τ̂_t^p (0 when empty)."""
    agree = (torch.sign(trimmed) == sign.unsqueeze(0)) & (trimmed != 0)
    count = agree.sum(0)
    total = (trimmed * agree).sum(0)
    return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


def ties_merge(base: State, states: Sequence[State], names: Sequence[str], density: float = 0.2,
               scale: float = 1.0) -> dict[str, Tensor]:
    """TIES-merging (Yadav et al. 2023, Algorithm 1): trim, elect sign, disjoint merge; θ = θ_base + λ τ_m."""
    trimmed = ties_trim(task_vectors(base, states, names), density)
    merged = ties_disjoint_merge(trimmed, ties_elect(trimmed))
    return unflatten(flatten(base, names) + scale * merged, base, names)


def slerp_vectors(a: Tensor, b: Tensor, t: float, eps: float = SLERP_EPS) -> tuple[Tensor, float]:
    """(slerp(a, b; t), Ω): the point at fraction t of the arc from a to b, and the angle Ω between them."""
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b, 0.0
    cos = float(torch.clamp((a @ b) / (na * nb), -1.0, 1.0))
    omega = math.acos(cos)
    if math.sin(omega) < eps:
        return (1 - t) * a + t * b, omega
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega), omega


def slerp(a: State, b: State, names: Sequence[str], t: float = 0.5, base: State | None = None
          ) -> tuple[dict[str, Tensor], float]:
    """(SLERP of two networks' weights at t, the angle Ω in radians); with `base`, of their task vectors."""
    _check([a, b] if base is None else [base, a, b], names)
    va, vb = flatten(a, names), flatten(b, names)
    origin = flatten(base, names) if base is not None else torch.zeros_like(va)
    merged, omega = slerp_vectors(va - origin, vb - origin, t)
    return unflatten(origin + merged, a, names), omega


def plane_coordinates(base: State, tau: Tensor, point: State, names: Sequence[str]) -> tuple[Tensor, float]:
    """(coefficients c, residual ‖·‖): the least-squares c with θ_point ≈ θ_base + Σ_k c_k τ_k (τ: (K, P))."""
    d = flatten(point, names) - flatten(base, names)
    solution = torch.linalg.lstsq(tau.T, d.unsqueeze(1)).solution.squeeze(1)
    residual = float((tau.T @ solution - d).norm())
    return solution, residual


__all__ = [
    "SLERP_EPS",
    "flatten",
    "linear_average",
    "plane_coordinates",
    "slerp",
    "slerp_vectors",
    "task_arithmetic",
    "task_vectors",
    "ties_disjoint_merge",
    "ties_elect",
    "ties_merge",
    "ties_trim",
    "unflatten",
]
