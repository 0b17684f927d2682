"""Low-loss tunnels between optima by hyperplane-constrained optimization, and their m-optima generalization.

Fort & Jastrzebski 2019 ("Large Scale Structure of Neural Network Loss Landscapes", NeurIPS,
§4.3 "Connecting optima", Fig. 3) connect two optima θ_a, θ_b as follows: split the segment
into K pieces, at each interior point θ_k = θ_a + (k/K)(θ_b − θ_a) put up the hyperplane normal
to the segment, minimize the training loss *within* that hyperplane starting from θ_k
(gradients projected onto it), and join the optimized points. The deviations δ_k = θ_k* − θ_k
of the optimized points from the straight line fall into two clusters (their cosine-similarity
matrix, Fig. 3): points near θ_a fall into θ_a's wedge, points near θ_b into θ_b's — as the wedge
model predicts (`lsdb.landscape.wedges`). For m optima (§4.3, "m-connectors") the points of their
convex hull are optimized within the subspace normal to the hull (`minimize_in_complement` with
a basis of the hull's directions, on a grid of the simplex: `simplex_grid`).

Optimizing the knots alone can leave barriers on the segments between them on small models;
`optimize_path` therefore also minimizes the loss along the whole polygonal path (one uniformly
drawn point per segment and step, as Garipov et al. 2018 train their curves), keeping every knot
in its own hyperplane.

Functions take an `Objective` — a differentiable map from a flat point (P,) to a scalar loss —
and return tensors; nothing here knows about models or data. Bases are (J, P) matrices with
orthonormal rows spanning the directions that are *not* optimized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]
"""``objective(point) -> scalar loss`` for a flat point (P,); differentiable; may draw minibatches."""
StepCallback = Callable[[int, int], None]
"""``progress(done, total)``: called once per optimization step; may raise to stop."""


@dataclass(frozen=True)
class Tunnel:
    """A polygonal path: `knots` (K+1, P) from start to end, the straight-line points `line` at the
    same fractions `t` (K+1,), and each interior knot's loss per optimization step (`history`)."""

    knots: Tensor
    line: Tensor
    t: Tensor
    history: Tensor

    @property
    def deviations(self) -> Tensor:
        """δ_k = θ_k* − θ_k for the interior knots (K−1, P) (Fort & Jastrzebski 2019, Fig. 3)."""
        return (self.knots - self.line)[1:-1]


def line_points(start: Tensor, end: Tensor, n_pieces: int) -> tuple[Tensor, Tensor]:
    """(points (K+1, P), t (K+1,)): θ_a + (k/K)(θ_b − θ_a); the first and last rows are θ_a, θ_b exactly."""
    if n_pieces < 1:
        raise ValueError(f"a segment needs at least one piece, got {n_pieces}")
    if start.shape != end.shape or start.dim() != 1:
        raise ValueError("start and end must be flat vectors of the same length")
    t = torch.linspace(0.0, 1.0, n_pieces + 1, dtype=torch.float64)
    points = start.unsqueeze(0) + t.to(start).unsqueeze(1) * (end - start).unsqueeze(0)
    points[0], points[-1] = start, end
    return points, t


def orthonormal_rows(vectors: Tensor, rtol: float = 1e-10) -> Tensor:
    """An orthonormal basis (J', P) of the span of the rows of `vectors` (J, P), J' ≤ J: the right
    singular vectors whose singular values exceed `rtol` times the largest (so dependent rows are
    dropped); computed in float64, returned in the input dtype."""
    if vectors.dim() != 2:
        raise ValueError("vectors must be a (J, P) matrix")
    if vectors.shape[0] == 0:
        return vectors.new_zeros(0, vectors.shape[1])
    _, s, vh = torch.linalg.svd(vectors.to(torch.float64), full_matrices=False)
    keep = s > rtol * max(float(s.max()), 1e-300)
    return vh[keep].to(vectors.dtype)


def project_out(v: Tensor, basis: Tensor) -> Tensor:
    """v − Bᵀ(B v): the part of `v` (…, P) orthogonal to the rows of the orthonormal `basis` (J, P)."""
    if basis.shape[0] == 0:
        return v
    return v - (v @ basis.T) @ basis


def minimize_in_complement(
    objective: Objective,
    point: Tensor,
    basis: Tensor,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    progress: Callable[[int], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Minimize `objective` over point + span(basis)^⊥ by projected SGD with momentum, from `point`.

    Each step takes the gradient, removes its components along the basis rows (Fort & Jastrzebski
    2019, §4.3: "gradients projected onto the hyperplane"), and, to stop rounding errors from
    accumulating, projects the displacement from `point` back into the complement. Returns the
    final point and the loss at each step (evaluated before the step), float64.
    """
    if steps < 0 or lr < 0 or not 0 <= momentum < 1:
        raise ValueError("steps and lr must be >= 0 and momentum in [0, 1)")
    basis = basis.to(point)
    x = point.detach().clone()
    velocity = torch.zeros_like(x)
    losses = torch.empty(steps, dtype=torch.float64)
    for step in range(steps):
        x.requires_grad_(True)
        loss = objective(x)
        (grad,) = torch.autograd.grad(loss, x)
        x = x.detach()
        losses[step] = float(loss.detach())
        velocity = momentum * velocity + project_out(grad, basis)
        x = point + project_out(x - lr * velocity - point, basis)
        if progress is not None:
            progress(step + 1)
    return x, losses


def tunnel(
    objective: Objective,
    start: Tensor,
    end: Tensor,
    n_pieces: int,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    progress: StepCallback | None = None,
) -> Tunnel:
    """Fort & Jastrzebski's tunnel (§4.3): each interior point of the K-piece segment optimized within
    the hyperplane through it normal to θ_b − θ_a. The end points are `start` and `end` themselves."""
    line, t = line_points(start, end, n_pieces)
    normal = unit_normal(start, end).unsqueeze(0)
    knots = line.clone()
    history = torch.zeros(max(n_pieces - 1, 0), steps, dtype=torch.float64)
    total = (n_pieces - 1) * steps
    for k in range(1, n_pieces):
        report = None if progress is None else (lambda s, k=k: progress((k - 1) * steps + s, total))
        knots[k], history[k - 1] = minimize_in_complement(objective, line[k], normal, steps, lr, momentum, report)
    return Tunnel(knots, line, t, history)


def unit_normal(start: Tensor, end: Tensor) -> Tensor:
    """(θ_b − θ_a) / ‖θ_b − θ_a‖, the normal of the tunnel's hyperplanes."""
    direction = end - start
    norm = torch.linalg.vector_norm(direction)
    if not norm > 0:
        raise ValueError("the two optima are the same point: there is no segment to tunnel along")
    return direction / norm


def optimize_path(
    objective: Objective,
    path: Tunnel,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    generator: torch.Generator | None = None,
    progress: StepCallback | None = None,
) -> Tunnel:
    """Minimize the mean loss along the whole polygonal path, each interior knot kept in its hyperplane.

    Every step draws one point s ~ U(0, 1) on each of the K segments (a stochastic estimate of
    the path integral, as Garipov et al. 2018 fit their curves, §3.1), back-propagates the mean of
    their losses to the knots, and takes a projected momentum step (normal θ_b − θ_a, as in
    `tunnel`). The history row of knot k is then the mean path loss per step (the same row for all).
    """
    knots = path.knots.detach().clone()
    n_pieces = knots.shape[0] - 1
    normal = unit_normal(knots[0], knots[-1]).unsqueeze(0)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    velocity = torch.zeros_like(knots[1:-1])
    history = torch.empty(steps, dtype=torch.float64)
    for step in range(steps):
        inner = knots[1:-1].clone().requires_grad_(True)
        full = torch.cat([knots[:1], inner, knots[-1:]])
        s = torch.rand(n_pieces, generator=gen, dtype=torch.float64).to(knots)
        loss = sum(objective((1 - s[k]) * full[k] + s[k] * full[k + 1]) for k in range(n_pieces)) / n_pieces
        (grad,) = torch.autograd.grad(loss, inner)  # type: ignore[arg-type]
        history[step] = float(loss.detach())  # type: ignore[union-attr]
        velocity = momentum * velocity + project_out(grad, normal)
        moved = inner.detach() - lr * velocity
        knots[1:-1] = path.line[1:-1] + project_out(moved - path.line[1:-1], normal)
        if progress is not None:
            progress(step + 1, steps)
    return Tunnel(knots, path.line, path.t, history.unsqueeze(0).expand(max(n_pieces - 1, 0), steps).clone())


def polyline(knots: Tensor, per_segment: int) -> tuple[Tensor, Tensor]:
    """(points (K·per_segment + 1, P), t): `per_segment` evenly spaced points on each segment, the knots
    exactly included (t = k/K at knot k)."""
    if per_segment < 1:
        raise ValueError(f"per_segment must be >= 1, got {per_segment}")
    n_pieces = knots.shape[0] - 1
    rows, ts = [], []
    for k in range(n_pieces):
        for j in range(per_segment):
            s = j / per_segment
            rows.append(knots[k] if j == 0 else (1 - s) * knots[k] + s * knots[k + 1])
            ts.append((k + s) / n_pieces)
    rows.append(knots[-1])
    ts.append(1.0)
    return torch.stack(rows), torch.tensor(ts, dtype=torch.float64)


def cosine_matrix(vectors: Tensor) -> Tensor:
    """Cosine similarities of the rows of `vectors` (J, P) as float64 (J, J); a zero row has cosine 0
    with everything (and 1 with itself)."""
    work = vectors.to(torch.float64)
    norms = torch.linalg.vector_norm(work, dim=1)
    unit = work / torch.where(norms > 0, norms, 1.0).unsqueeze(1)
    cos = (unit @ unit.T).clamp(-1.0, 1.0)
    cos.fill_diagonal_(1.0)
    return cos


def two_block_split(cos: Tensor) -> tuple[int, float]:
    """The contiguous two-cluster split of a cosine matrix (J, J) of path-ordered vectors.

    Returns (s, contrast): rows < s form one block and rows ≥ s the other, chosen to maximize
    the mean within-block cosine (diagonal excluded) minus the mean across-block cosine. A
    large contrast is the two clusters of Fort & Jastrzebski 2019, Fig. 3. (0, 0.0) when J < 2.
    """
    j = cos.shape[0]
    if j < 2:
        return 0, 0.0
    c = cos.to(torch.float64)
    best = (0, float("-inf"))
    for s in range(1, j):
        blocks = [c[:s, :s], c[s:, s:]]
        within = [b.sum() - b.diagonal().sum() for b in blocks]
        pairs = s * (s - 1) + (j - s) * (j - s - 1)
        mean_within = float(sum(within)) / pairs if pairs else 1.0
        contrast = mean_within - float(c[:s, s:].mean())
        if contrast > best[1]:
            best = (s, contrast)
    return best


def simplex_grid(m: int, resolution: int) -> Tensor:
    """All barycentric weights w = a / resolution with a ∈ ℕ^m, Σ a = resolution: float64 (G, m),
    G = C(resolution + m − 1, m − 1), in lexicographic order of a (vertices are exact one-hot rows)."""
    if m < 1 or resolution < 1:
        raise ValueError("m and resolution must be >= 1")

    def compositions(total: int, parts: int) -> list[list[int]]:
        if parts == 1:
            return [[total]]
        return [[a, *rest] for a in range(total, -1, -1) for rest in compositions(total - a, parts - 1)]

    return torch.tensor(compositions(resolution, m), dtype=torch.float64) / resolution


def hull_basis(vertices: Tensor) -> Tensor:
    """Orthonormal rows spanning the directions of the convex hull of `vertices` (m, P): θ_i − θ_0."""
    return orthonormal_rows(vertices[1:] - vertices[:1])


def connector(
    objective: Objective,
    vertices: Tensor,
    weights: Tensor,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    progress: StepCallback | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The m-connector (Fort & Jastrzebski 2019, §4.3): each point Σ_i w_i θ_i of the hull optimized
    within the subspace normal to the hull; vertices (one-hot rows of `weights`) are left as they are.

    Returns (hull points (G, P), optimized points (G, P), loss history (G, steps), zero for vertices).
    """
    basis = hull_basis(vertices)
    hull = weights.to(vertices) @ vertices
    vertex = (weights == 1.0).any(dim=1)
    for i in range(len(weights)):  # the vertices themselves, bit for bit
        if vertex[i]:
            hull[i] = vertices[int(weights[i].argmax())]
    out = hull.clone()
    history = torch.zeros(len(weights), steps, dtype=torch.float64)
    todo = [i for i in range(len(weights)) if not vertex[i]]
    for n, i in enumerate(todo):
        report = None if progress is None else (lambda s, n=n: progress(n * steps + s, len(todo) * steps))
        out[i], history[i] = minimize_in_complement(objective, hull[i], basis, steps, lr, momentum, report)
    return hull, out, history
