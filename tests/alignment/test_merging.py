"""Merges against their closed forms: linear average, task arithmetic (Ilharco et al. 2023), SLERP's angle,
and each TIES step (Yadav et al. 2023) against a hand-computed example."""

from __future__ import annotations

import math

import pytest
import torch

from lsdb.landscape.merging import (
    linear_average,
    plane_coordinates,
    slerp,
    slerp_vectors,
    task_arithmetic,
    task_vectors,
    ties_disjoint_merge,
    ties_elect,
    ties_merge,
    ties_trim,
)

NAMES = ["w", "b"]


def _state(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 2, generator=gen, dtype=torch.float64),
            "b": torch.randn(3, generator=gen, dtype=torch.float64), "n": torch.tensor(seed)}


def test_average_and_task_arithmetic_equal_their_closed_forms() -> None:
    base, a, b = _state(0), _state(1), _state(2)
    avg = linear_average([a, b], NAMES, [0.25, 0.75])
    torch.testing.assert_close(avg["w"], 0.25 * a["w"] + 0.75 * b["w"], rtol=0, atol=1e-15)
    assert int(avg["n"]) == 1  # untouched tensors come from the first network
    merged = task_arithmetic(base, [a, b], NAMES, scale=0.4)
    for k in NAMES:
        torch.testing.assert_close(merged[k], base[k] + 0.4 * ((a[k] - base[k]) + (b[k] - base[k])), rtol=0,
                                   atol=1e-15)
    tau = task_vectors(base, [a, b], NAMES)
    assert tau.shape == (2, 9)
    coords, residual = plane_coordinates(base, tau, merged, NAMES)
    torch.testing.assert_close(coords, torch.tensor([0.4, 0.4], dtype=torch.float64))
    assert residual < 1e-12


TAU = torch.tensor([[0.5, -0.1, 2.0, -1.0],
                    [-0.4, 0.3, 1.0, 0.2],
                    [0.1, -0.6, -2.5, 0.0]], dtype=torch.float64)


def test_ties_trim_keeps_each_task_vectors_top_k_by_magnitude() -> None:
    trimmed = ties_trim(TAU, density=0.5)  # k = 2 of 4 per task vector
    expected = torch.tensor([[0.0, 0.0, 2.0, -1.0],
                             [-0.4, 0.0, 1.0, 0.0],
                             [0.0, -0.6, -2.5, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(trimmed, expected, rtol=0, atol=0)
    torch.testing.assert_close(ties_trim(TAU, 1.0), TAU, rtol=0, atol=0)


def test_ties_elect_takes_the_sign_of_the_total_mass() -> None:
    trimmed = ties_trim(TAU, density=0.5)  # column sums: -0.4, -0.6, 0.5, -1.0
    torch.testing.assert_close(ties_elect(trimmed), torch.tensor([-1.0, -1.0, 1.0, -1.0], dtype=torch.float64))


def test_ties_disjoint_merge_averages_only_the_agreeing_nonzero_entries() -> None:
    trimmed = ties_trim(TAU, density=0.5)
    merged = ties_disjoint_merge(trimmed, ties_elect(trimmed))
    # column 2: +2.0 and +1.0 agree with γ = +1, -2.5 is dropped; zeros never count
    torch.testing.assert_close(merged, torch.tensor([-0.4, -0.6, 1.5, -1.0], dtype=torch.float64))
    assert ties_disjoint_merge(torch.zeros(2, 3), torch.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_ties_merge_is_the_base_plus_scaled_disjoint_mean() -> None:
    base = {"v": torch.zeros(4, dtype=torch.float64)}
    states = [{"v": row.clone()} for row in TAU]
    merged = ties_merge(base, states, ["v"], density=0.5, scale=2.0)
    torch.testing.assert_close(merged["v"], 2.0 * torch.tensor([-0.4, -0.6, 1.5, -1.0], dtype=torch.float64))


def test_slerp_moves_along_the_great_circle_by_the_fraction_of_the_angle() -> None:
    a, b = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    mid, omega = slerp_vectors(a, b, 0.5)
    assert omega == pytest.approx(math.pi / 2)
    torch.testing.assert_close(mid, torch.tensor([math.sqrt(0.5), math.sqrt(2.0)], dtype=torch.float64))
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(50, generator=gen, dtype=torch.float64), torch.randn(50, generator=gen, dtype=torch.float64)
    v = v / v.norm() * u.norm()  # equal norms: the point stays on the sphere, at angle tΩ from u
    for t in (0.0, 0.3, 0.7, 1.0):
        point, omega = slerp_vectors(u, v, t)
        assert omega == pytest.approx(math.acos(float(u @ v / (u.norm() * v.norm()))))
        angle_to_u = math.acos(min(1.0, float(point @ u / (point.norm() * u.norm()))))
        assert angle_to_u == pytest.approx(t * omega, abs=1e-7)
        assert float(point.norm()) == pytest.approx(float(u.norm()))
    parallel, omega = slerp_vectors(u, 3 * u, 0.5)
    torch.testing.assert_close(parallel, 2 * u)


def test_slerp_with_a_base_interpolates_the_task_vectors() -> None:
    base, a, b = _state(0), _state(1), _state(2)
    merged, omega = slerp(a, b, NAMES, 0.5, base)
    tau = task_vectors(base, [a, b], NAMES)
    expected, expected_omega = slerp_vectors(tau[0], tau[1], 0.5)
    assert omega == pytest.approx(expected_omega)
    got = torch.cat([(merged[k] - base[k]).reshape(-1) for k in NAMES])
    torch.testing.assert_close(got, expected)


def test_networks_that_differ_cannot_be_merged() -> None:
    a, b = _state(0), _state(1)
    b["w"] = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="differ at 'w'"):
        linear_average([a, b], NAMES)
