"""The hand-written R-operator products (`sequential_hvp`) against autograd's and `torch.func.hessian`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lsdb.landscape import sequential_hvp
from lsdb.landscape.hvp import HessianOperator
from lsdb.landscape.losses import softmax_cross_entropy
from lsdb.models import build_model
from tests.curvature.curvature_factories import make_bn_model, reference_hessian


def _data(n: int, d: int, classes: int, loss: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        return x, torch.randint(0, classes, (n,), generator=gen)
    return x, torch.randn(n, classes, generator=gen, dtype=torch.float64)


def _zoo(activation: str, dropout: float = 0.0, widths: tuple[int, ...] = (6, 5)) -> nn.Module:
    model = build_model({"name": "mlp", "kwargs": {"widths": list(widths), "activation": activation,
                                                   "dropout": dropout}}, (2, 4), 3, seed=1)
    return model.double().eval()


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid", "elu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_the_dense_hessian_equals_torch_func_hessian_for_every_zoo_activation(activation: str, loss: str) -> None:
    model = _zoo(activation, dropout=0.1)
    x, y = _data(17, 8, 3, loss)
    x = x.view(17, 2, 4)  # the model flattens
    op = HessianOperator(model, x, y, loss=loss, kernel="sequential")  # type: ignore[arg-type]
    assert op._sequential is not None
    theta, h = reference_hessian(model, x, y, loss=loss)
    torch.testing.assert_close(op.dense(), h, rtol=1e-9, atol=1e-11)
    slow = HessianOperator(model, x, y, loss=loss, kernel="autograd")  # type: ignore[arg-type]
    assert slow._sequential is None
    assert op.loss == pytest.approx(slow.loss, rel=1e-12)
    assert op.gradient is not None and slow.gradient is not None
    torch.testing.assert_close(op.gradient, slow.gradient, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("batch_size", [4, 17])
def test_products_over_batches_and_at_moved_points_equal_autograds(batch_size: int) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 7), nn.LeakyReLU(0.2), nn.Linear(7, 7, bias=False),
                          nn.SiLU(), nn.Identity(), nn.Linear(7, 3)).double().eval()
    x, y = _data(17, 8, 3, "cross_entropy", seed=3)
    fast = HessianOperator(model, x, y, batch_size=batch_size)
    slow = HessianOperator(model, x, y, batch_size=batch_size, kernel="autograd")
    assert fast._sequential is not None and len(fast._batches()) == -(-17 // batch_size)
    gen = torch.Generator().manual_seed(4)
    vs = torch.randn(3, fast.n, dtype=torch.float64, generator=gen)
    for _ in range(2):
        torch.testing.assert_close(fast.matmat(vs), slow.matmat(vs), rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(fast.matvec(vs[0]), slow.matvec(vs[0]), rtol=1e-10, atol=1e-13)
        moved = fast.theta + 0.3 * torch.randn(fast.n, dtype=torch.float64, generator=gen)
        fast.set_point(moved)
        slow.set_point(moved)
        assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
    assert fast.hvp_count == slow.hvp_count == 8


def test_float32_products_agree_with_autograd_to_rounding() -> None:
    model = _zoo("relu", widths=(32, 32)).float()
    x, y = _data(200, 8, 3, "cross_entropy", seed=5)
    fast, slow = HessianOperator(model, x.float(), y), HessianOperator(model, x.float(), y, kernel="autograd")
    v = torch.randn(fast.n, generator=torch.Generator().manual_seed(6))
    a, b = fast.matvec(v), slow.matvec(v)
    assert float((a - b).norm() / b.norm()) < 1e-5


def test_models_it_cannot_handle_use_autograd_or_are_refused() -> None:
    x, y = _data(10, 3, 3, "cross_entropy")
    bn = make_bn_model()
    tied = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3)).double().eval()
    tied[2].weight = tied[0].weight
    nested = nn.Sequential(nn.Sequential(nn.Linear(3, 4)), nn.ReLU(), nn.Linear(4, 4)).double().eval()
    for model in (bn, tied, nested):
        assert not sequential_hvp.supports(model)
        op = HessianOperator(model, x, y)
        assert op._sequential is None
        with pytest.raises(ValueError, match="kernel='sequential'"):
            HessianOperator(model, x, y, kernel="sequential")
    plain = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4)).double().eval()
    assert HessianOperator(plain, x, y, method="forward")._sequential is None
    with pytest.raises(ValueError, match="kernel must be"):
        HessianOperator(plain, x, y, kernel="fast")  # type: ignore[arg-type]


def test_a_linear_layer_on_sequences_falls_back_to_autograd_with_the_same_products() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Flatten(), nn.Linear(8, 4)).double().eval()
    gen = torch.Generator().manual_seed(7)
    x, y = torch.randn(9, 2, 3, dtype=torch.float64, generator=gen), torch.randint(0, 4, (9,), generator=gen)
    op = HessianOperator(model, x, y)
    assert op._sequential is None  # found out at the first point
    _, h = reference_hessian(model, x, y)
    torch.testing.assert_close(op.dense(), h, rtol=1e-9, atol=1e-11)


def test_the_gradient_is_formed_on_first_use_at_the_current_point() -> None:
    model = _zoo("relu", widths=(6, 5))
    x, y = _data(23, 8, 3, "cross_entropy", seed=7)
    fast = HessianOperator(model, x, y, batch_size=10)
    slow = HessianOperator(model, x, y, batch_size=10, kernel="autograd")
    assert fast._sequential is not None and fast._gradient is None  # set_point did not form it
    torch.testing.assert_close(fast.gradient, slow.gradient, rtol=1e-10, atol=1e-13)
    moved = fast.theta + 0.2 * torch.randn(fast.n, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    fast.set_point(moved)
    slow.set_point(moved)
    torch.testing.assert_close(fast.gradient, slow.gradient, rtol=1e-10, atol=1e-13)  # not the old point's


@pytest.mark.parametrize("kernel", ["sequential", "autograd"])
def test_float32_products_equal_torch_autograd_functional_hvp(kernel: str) -> None:
    model = _zoo("tanh", widths=(16,)).float()
    x, y = _data(64, 8, 3, "cross_entropy", seed=9)
    op = HessianOperator(model, x.float(), y, kernel=kernel)  # type: ignore[arg-type]
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(10))

    def mean_loss(theta: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(op.module, op.unflatten(theta), (x.float(),))
        return torch.nn.functional.cross_entropy(out, y)

    _, expected = torch.autograd.functional.hvp(mean_loss, op.theta, v)
    got = op.matvec(v)
    assert float((got - expected).norm() / expected.norm()) < 1e-5


def test_the_fused_float32_cross_entropy_stays_accurate_near_zero_loss() -> None:
    gen = torch.Generator().manual_seed(11)
    labels = torch.randint(0, 10, (1000,), generator=gen)
    logits = torch.randn(1000, 10, generator=gen) + 10 * torch.nn.functional.one_hot(labels, 10)
    logits = logits + 50  # large logits: Σ (logsumexp) and Σ z_y each about 6e4, their difference about 0.5
    probs, losses = softmax_cross_entropy(logits, labels)
    value = float(losses.sum())
    exact = torch.nn.functional.cross_entropy(logits.double(), labels, reduction="sum")
    assert value == pytest.approx(float(exact), rel=1e-5)  # a difference of the two float32 sums: ~1e-2 off
    torch.testing.assert_close(probs.double(), torch.softmax(logits.double(), dim=1), rtol=0, atol=1e-6)
    converged = torch.tensor([[30.0, 0.0, -5.0]])  # loss ~1e-13: float32 log-sum-exp would give 0
    assert float(softmax_cross_entropy(converged, torch.tensor([0]))[1]) == pytest.approx(
        float(torch.nn.functional.cross_entropy(converged.double(), torch.tensor([0]))), rel=1e-5)
    bulk = torch.randn(50, 4, generator=gen)
    y = torch.randint(0, 4, (50,), generator=gen)
    assert float(softmax_cross_entropy(bulk, y)[1].sum()) == pytest.approx(
        float(torch.nn.functional.cross_entropy(bulk.double(), y, reduction="sum")), rel=1e-6)
