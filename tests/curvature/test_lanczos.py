"""Lanczos against `torch.linalg.eigvalsh` on tiny float64 Hessians and on matrices with a known spectrum."""

from __future__ import annotations

import pytest
import torch

from lsdb.landscape.hvp import HessianOperator
from lsdb.landscape.lanczos import lanczos, ritz_error_bounds, tridiagonalize
from tests.curvature.curvature_factories import make_problem, reference_hessian


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _known_spectrum(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A dense symmetric matrix Q diag(λ) Qᵀ with outliers 10, 7, 5, -3 over a bulk in [-1, 2]."""
    gen = _gen(seed)
    bulk = torch.rand(n - 4, generator=gen, dtype=torch.float64) * 3 - 1
    values = torch.cat([torch.tensor([10.0, 7.0, 5.0, -3.0], dtype=torch.float64), bulk])
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return (q * values) @ q.T, values.sort(descending=True).values


def test_top_k_and_lambda_min_equal_eigvalsh_of_the_dense_hessian() -> None:
    model, x, y = make_problem(n=30)
    _, h = reference_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(h)
    op = HessianOperator(model, x, y)
    res = lanczos(op.matvec, op.n, k=3, bottom=1, tol=1e-10, max_iter=200, generator=_gen(), dtype=torch.float64)
    assert res.converged
    torch.testing.assert_close(res.top, exact[-3:].flip(0), rtol=1e-6, atol=0)
    torch.testing.assert_close(res.bottom, exact[:1], rtol=1e-6, atol=0)
    assert res.top_vectors is not None and res.bottom_vectors is not None
    for value, vec in [*zip(res.top, res.top_vectors, strict=True), (res.bottom[0], res.bottom_vectors[0])]:
        assert torch.linalg.vector_norm(vec).item() == pytest.approx(1.0, abs=1e-10)
        assert torch.linalg.vector_norm(h @ vec - value * vec) < 1e-6 * exact.abs().max()
    assert op.hvp_count == res.matvecs == res.iterations <= op.n


def test_error_bounds_cover_the_actual_errors_while_converging() -> None:
    a, values = _known_spectrum()
    for steps in (4, 8, 12, 20, 40):
        res = lanczos(lambda v: a @ v, len(a), k=3, bottom=1, tol=0.0, max_iter=steps, generator=_gen(1),
                      dtype=torch.float64)
        assert not res.converged and res.iterations == steps
        for ritz, bound in [*zip(res.top, res.top_errors, strict=True), (res.bottom[0], res.bottom_errors[0])]:
            assert (values - ritz).abs().min() <= bound + 1e-12  # an eigenvalue lies within the bound
        assert (res.top <= values[:3] + 1e-12).all()  # Ritz values never overshoot (interlacing)
        assert res.bottom[0] >= values[-1] - 1e-12
        if steps >= 12:  # the outliers are found: the bounds hold for them
            assert ((values[:3] - res.top).abs() <= res.top_errors + 1e-12).all()


def test_stops_at_the_requested_relative_tolerance() -> None:
    a, values = _known_spectrum()
    loose = lanczos(lambda v: a @ v, len(a), k=2, tol=1e-3, max_iter=200, generator=_gen(), dtype=torch.float64)
    tight = lanczos(lambda v: a @ v, len(a), k=2, tol=1e-10, max_iter=200, generator=_gen(), dtype=torch.float64)
    assert loose.converged and tight.converged and loose.iterations < tight.iterations
    assert ((loose.top - values[:2]).abs() / values[:2] <= 1e-3).all()
    torch.testing.assert_close(tight.top, values[:2], rtol=1e-10, atol=0)


def test_warm_start_from_a_nearby_operator_agrees_with_fewer_products() -> None:
    a, _ = _known_spectrum()
    gen = _gen(5)
    e = torch.randn(len(a), len(a), generator=gen, dtype=torch.float64) * 1e-3
    b = a + (e + e.T)
    exact = torch.linalg.eigvalsh(b)
    first = lanczos(lambda v: a @ v, len(a), k=1, bottom=1, tol=1e-8, max_iter=300, generator=_gen(),
                    dtype=torch.float64)
    warm_start = torch.cat([first.top_vectors, first.bottom_vectors])  # type: ignore[list-item]
    cold = lanczos(lambda v: b @ v, len(b), k=1, bottom=1, tol=1e-8, max_iter=300, generator=_gen(1),
                   dtype=torch.float64)
    warm = lanczos(lambda v: b @ v, len(b), k=1, bottom=1, tol=1e-8, max_iter=300, generator=_gen(1),
                   dtype=torch.float64, start=warm_start)
    assert warm.converged and cold.converged and warm.iterations < cold.iterations
    for res in (warm, cold):
        torch.testing.assert_close(res.top, exact[-1:], rtol=1e-8, atol=0)
        torch.testing.assert_close(res.bottom, exact[:1], rtol=0, atol=1e-8 * exact[-1].item())  # λmin: vs λmax


def test_an_invariant_start_is_continued_until_the_true_extremes_are_found() -> None:
    diag = torch.tensor([1.0, 2.0, 3.0, 5.0, -4.0, 0.5], dtype=torch.float64)
    start = torch.tensor([1.0, 0, 0, 0, 0, 0], dtype=torch.float64)  # an eigenvector: breakdown at once
    res = lanczos(lambda v: diag * v, 6, k=2, bottom=1, tol=1e-12, max_iter=6, start=start, start_noise=0.0,
                  generator=_gen(), dtype=torch.float64)
    torch.testing.assert_close(res.top, torch.tensor([5.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(res.bottom, torch.tensor([-4.0], dtype=torch.float64))


def test_ritz_error_bounds_use_the_gap_only_once_it_is_resolved() -> None:
    theta = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    r = torch.tensor([0.1, 0.5, 0.01], dtype=torch.float64)
    bounds = ritz_error_bounds(theta, r)
    assert bounds[2] == pytest.approx(0.01**2 / (2.0 - 0.5))  # gap to θ_2 minus its residual
    assert bounds[1] == pytest.approx(0.5**2 / 0.9)  # gap 1 - 0.1 = 0.9 > r = 0.5
    assert bounds[0] == pytest.approx(0.1**2 / 0.5)  # gap 1 - 0.5
    assert ritz_error_bounds(theta, torch.tensor([0.1, 0.95, 0.01], dtype=torch.float64))[1] == 0.95  # unresolved
    assert ritz_error_bounds(theta[:1], r[:1])[0] == pytest.approx(0.1)


def test_lockstep_tridiagonalization_equals_separate_runs() -> None:
    a, _ = _known_spectrum(n=60)
    starts = torch.randn(3, 60, generator=_gen(2), dtype=torch.float64)
    alpha, beta = tridiagonalize(lambda v: v @ a, starts, 10)
    for r in range(3):
        one_a, one_b = tridiagonalize(lambda v: v @ a, starts[r:r + 1], 10)
        torch.testing.assert_close(alpha[r], one_a[0])
        torch.testing.assert_close(beta[r], one_b[0])
    assert alpha.shape == (3, 10) and beta.shape == (3, 9)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        lanczos(lambda v: v, 5, k=0, bottom=0)


def test_float32_top_eigenvalue_at_tol_1e4_matches_eigvalsh_of_the_explicit_hessian() -> None:
    model, x, y = make_problem(n=40)
    _, h = reference_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(h)
    op = HessianOperator(model.float(), x.float(), y)
    for seed, start in ((0, None), (1, op.gradient)):
        res = lanczos(op.matvec, op.n, k=1, tol=1e-4, max_iter=44, start=start, start_noise=0.5 ** 0.5,
                      generator=_gen(seed), vectors=False)
        assert res.converged and res.iterations < op.n
        assert abs(float(res.top[0]) - float(exact[-1])) <= 1e-4 * float(exact[-1])


def test_the_float32_basis_stays_orthonormal_over_many_steps() -> None:
    a, values = _known_spectrum(n=600)
    res = lanczos(lambda v: a.float() @ v, len(a), k=3, bottom=1, tol=0.0, max_iter=150, min_iter=150,
                  generator=_gen(2), keep_basis=True)
    assert res.basis is not None and res.iterations == 150
    q = res.basis.double()
    assert float((q @ q.T - torch.eye(150, dtype=torch.float64)).abs().max()) < 1e-5
    torch.testing.assert_close(res.top, values[:3], rtol=1e-5, atol=0)  # no spurious copies of 10, 7, 5


def test_the_tridiagonal_solver_equals_scipys_and_is_skipped_before_the_first_test() -> None:
    import numpy as np
    import scipy.linalg

    from lsdb.landscape import lanczos as module

    rng = np.random.default_rng(0)
    alpha, beta = rng.normal(size=12), rng.normal(size=11)
    values, vectors = module._ritz(alpha, beta)
    ref_values, ref_vectors = scipy.linalg.eigh_tridiagonal(alpha, beta)
    np.testing.assert_allclose(values, ref_values, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.abs(vectors), np.abs(ref_vectors), rtol=0, atol=1e-12)
    assert module._spectral_bound(alpha, beta) >= np.abs(values).max()
    a, values_a = _known_spectrum(n=80)
    solves = []
    original = module._ritz
    try:
        module._ritz = lambda al, be: solves.append(len(al)) or original(al, be)  # type: ignore[assignment]
        res = lanczos(lambda v: a @ v, 80, k=1, bottom=1, tol=1e-8, max_iter=80, min_iter=10, generator=_gen(),
                      dtype=torch.float64)
    finally:
        module._ritz = original
    assert res.converged and solves[0] == 10 and solves == list(range(10, res.iterations + 1))
    torch.testing.assert_close(res.top, values_a[:1], rtol=1e-8, atol=0)
