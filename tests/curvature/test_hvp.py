"""Hessian-vector products against dense `torch.func.hessian` references on tiny float64 models."""

from __future__ import annotations

import pytest
import torch

from lsdb.landscape import Evaluator, ParamLayout
from lsdb.landscape.hvp import HessianOperator, flat_parameters, subset_indices
from tests.curvature.curvature_factories import make_bn_model, make_problem, reference_hessian


@pytest.mark.parametrize("method", ["reverse", "forward"])
@pytest.mark.parametrize("batch_size", [None, 5])
def test_hvp_equals_dense_hessian_times_vector(method: str, batch_size: int | None) -> None:
    model, x, y = make_problem()
    _, h = reference_hessian(model, x, y)
    op = HessianOperator(model, x, y, method=method, batch_size=batch_size)  # type: ignore[arg-type]
    v = torch.randn(op.n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(op.matvec(v), h @ v, rtol=1e-10, atol=1e-12)
    assert op.hvp_count == 1


def test_uncached_and_batched_products_agree_with_the_cached_ones() -> None:
    model, x, y = make_problem()
    vs = torch.randn(3, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cached = HessianOperator(model, x, y, batch_size=4, cache_graphs=True)
    fresh = HessianOperator(model, x, y, batch_size=4, cache_graphs=False, batched=True)
    assert cached.cache_graphs and not fresh.cache_graphs
    torch.testing.assert_close(fresh.matmat(vs), cached.matmat(vs), rtol=1e-10, atol=1e-12)
    assert cached.hvp_count == fresh.hvp_count == 3


def test_mse_loss_and_the_dense_matrix() -> None:
    model, x, y = make_problem(loss="mse")
    theta, h = reference_hessian(model, x, y, loss="mse")
    op = HessianOperator(model, x, y, loss="mse")
    torch.testing.assert_close(op.dense(), h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op.theta, theta)


def test_loss_and_gradient_at_a_moved_point() -> None:
    model, x, y = make_problem()
    theta = flat_parameters(model) + 0.1
    op = HessianOperator(model, x, y, theta=theta)
    leaf = theta.clone().requires_grad_(True)
    moved = make_problem()[0]
    torch.nn.utils.vector_to_parameters(leaf, moved.parameters())
    loss = torch.nn.functional.cross_entropy(moved(x), y)
    (grad,) = torch.autograd.grad(loss, list(moved.parameters()))[:1]
    assert op.loss == pytest.approx(float(loss.detach()), rel=1e-12)
    assert op.gradient is not None and op.gradient.shape == (44,)
    torch.testing.assert_close(op.gradient[: grad.numel()], grad.reshape(-1))


def test_batchnorm_uses_running_statistics_in_eval_mode() -> None:
    model = make_bn_model()
    _, x, y = make_problem()
    _, h = reference_hessian(model, x, y)  # the model is in eval mode: running statistics
    op = HessianOperator(model, x, y, batch_size=5)  # batching must not matter in eval mode
    torch.testing.assert_close(op.dense(), h, rtol=1e-10, atol=1e-12)
    batch = HessianOperator(model, x, y, bn="batch")
    assert not torch.allclose(batch.dense(), h)  # batch statistics: a different loss
    assert model[1].running_mean[0] == -0.5  # the caller's module is untouched


def test_subset_is_deterministic_for_a_seed_and_shared_with_the_evaluator() -> None:
    model, x, y = make_problem(n=40)
    a = HessianOperator(model, x, y, subset=10, seed=3)
    b = HessianOperator(model, x, y, subset=10, seed=3)
    c = HessianOperator(model, x, y, subset=10, seed=4)
    assert a.indices is not None and torch.equal(a.indices, b.indices)  # type: ignore[arg-type]
    assert not torch.equal(a.indices, c.indices)  # type: ignore[arg-type]
    assert a.n_examples == 10 and subset_indices(40, None, 0) is None
    v = torch.ones(a.n, dtype=torch.float64)
    torch.testing.assert_close(a.matvec(v), b.matvec(v))
    ev = Evaluator(model, x, y, subset=10, seed=3, dtype=torch.float64)
    assert torch.equal(ev.indices, a.indices)  # type: ignore[arg-type]
    _, h = reference_hessian(model, x[a.indices], y[a.indices])  # type: ignore[index]
    torch.testing.assert_close(a.dense(), h, rtol=1e-10, atol=1e-12)


def test_vectors_follow_the_param_layout() -> None:
    model, x, y = make_problem()
    op = HessianOperator(model, x, y)
    layout = ParamLayout.from_module(model)
    assert op.n == layout.n_params and tuple(op.names) == layout.names
    torch.testing.assert_close(op.theta, layout.flatten(model))


def test_float32_products_and_bad_input() -> None:
    model, x, y = make_problem()
    op = HessianOperator(model, x, y, dtype=torch.float32)
    _, h = reference_hessian(model, x, y)
    v = torch.randn(op.n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = op.matvec(v)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), h @ v, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="vector of 44"):
        op.set_point(torch.zeros(3))
    with pytest.raises(ValueError, match="loss"):
        HessianOperator(model, x, y, loss="hinge")  # type: ignore[arg-type]
