"""The evaluator against a plain per-point ``load_state_dict`` + forward loop, on the model zoo."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lsdb.data import Dataset
from lsdb.landscape import (
    Cancelled,
    Evaluator,
    ParamLayout,
    evaluate,
    grid_axis,
    grid_coefficients,
    normalize_direction,
    random_direction,
)
from tests.landscape.conftest import make_model
from tests.landscape.references import reference_losses

ZOO = [
    ("mlp:widths=[16,16]", False),
    ("simple_cnn:channels=[4,8]", True),
    ("resnet:depth=8", True),
    ("resnet:depth=8,skip=false", True),
    ("vgg:width=0.125", True),
]
CASES = [
    (spec, image, kind, bn)
    for spec, image in ZOO
    for kind in ("random", "filter")
    for bn in (("eval", "recompute") if spec.startswith(("resnet", "vgg")) else ("eval",))
]


def plane(model: torch.nn.Module, kind: str, scale: float) -> tuple[Tensor, Tensor, ParamLayout]:
    layout = ParamLayout.from_module(model)
    theta = layout.flatten(model)
    dirs = [random_direction(layout, seed=s, dtype=torch.float64) for s in (1, 2)]
    if kind == "filter":
        dirs = [normalize_direction(d, theta, layout, "filter") for d in dirs]
    else:
        dirs = [d * scale for d in dirs]
    return theta, torch.stack(dirs), layout


@pytest.mark.parametrize(("spec", "image", "kind", "bn"), CASES)
def test_evaluator_matches_per_point_reference(
    spec: str, image: bool, kind: str, bn: str, digits: Dataset, digits_image: Dataset
) -> None:
    data = digits_image if image else digits
    x, y = data.test[0][:32].double(), data.test[1][:32]
    train_x = data.train[0][:64].double()
    model = make_model(spec, data, warm_bn=train_x)
    theta, dirs, _ = plane(model, kind, scale=0.02)
    coefs = grid_coefficients(grid_axis(-0.5, 0.5, 2), grid_axis(-0.5, 0.5, 2))
    points = theta + coefs @ dirs
    recompute = bn == "recompute"
    want_loss, want_acc = reference_losses(model, points, x, y, train_x=train_x if recompute else None,
                                           bn_batch_size=32)
    for strategy in ("per_point", "batched"):
        ev = Evaluator(model, x, y, dtype=torch.float64, strategy=strategy, bn=bn,  # type: ignore[arg-type]
                       train_x=train_x, bn_batch_size=32)
        for result in (ev.along(dirs, coefs), ev.at_points(points)):
            assert result.strategy == strategy
            torch.testing.assert_close(result.loss, want_loss, rtol=1e-10, atol=0)
            torch.testing.assert_close(result.accuracy, want_acc, rtol=0, atol=0)


def test_float32_default_matches_reference_to_1e_5(digits: Dataset) -> None:
    x, y = digits.test
    model = make_model("mlp:widths=[32,32]", digits)
    theta, dirs, _ = plane(model, "filter", 0.0)
    coefs = grid_coefficients(grid_axis(-1, 1, 3), grid_axis(-1, 1, 3))
    want, _ = reference_losses(model, theta + coefs @ dirs, x.double(), y)
    for strategy in ("per_point", "batched"):
        got = Evaluator(model.float(), x, y, strategy=strategy).along(dirs.float(), coefs)  # type: ignore[arg-type]
        torch.testing.assert_close(got.loss, want, rtol=1e-5, atol=0)


def test_points_with_buffers_carry_their_own_batchnorm_statistics(digits_image: Dataset) -> None:
    x, y = digits_image.test[0][:40].double(), digits_image.test[1][:40]
    a = make_model("vgg:width=0.125", digits_image, seed=0, warm_bn=digits_image.train[0][:64])
    b = make_model("vgg:width=0.125", digits_image, seed=1, warm_bn=digits_image.train[0][64:128])
    layout = ParamLayout.from_module(a, buffers=True)
    points = torch.stack([layout.flatten(a), layout.flatten(b)])
    want, _ = reference_losses(a, points, x, y)
    for strategy in ("per_point", "batched"):
        got = Evaluator(a, x, y, dtype=torch.float64, strategy=strategy).at_points(points)  # type: ignore[arg-type]
        torch.testing.assert_close(got.loss, want, rtol=1e-10, atol=0)


def test_the_callers_module_is_never_modified(digits_image: Dataset) -> None:
    train_x = digits_image.train[0][:64].double()
    model = make_model("resnet:depth=8", digits_image, warm_bn=train_x).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = digits_image.test[0][:16].double(), digits_image.test[1][:16]
    _, dirs, _ = plane(model, "filter", 0.0)
    for strategy in ("per_point", "batched"):
        ev = Evaluator(model, x, y, dtype=torch.float64, bn="recompute", train_x=train_x,
                       strategy=strategy)  # type: ignore[arg-type]
        ev.along(dirs, torch.ones(2, 2))
    assert model.training and model.bn1.momentum == 0.1
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_mse_loss_is_the_mean_over_all_elements_and_has_no_accuracy(digits: Dataset) -> None:
    x = digits.test[0][:50].double()
    y = torch.randn(50, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = make_model("mlp:widths=[8]", digits)
    theta, dirs, _ = plane(model, "filter", 0.0)
    coefs = torch.tensor([[0.0, 0.0], [0.3, -0.2]], dtype=torch.float64)
    want, _ = reference_losses(model, theta + coefs @ dirs, x, y, loss="mse")
    got = Evaluator(model, x, y, loss="mse", dtype=torch.float64).along(dirs, coefs)
    assert got.accuracy is None
    torch.testing.assert_close(got.loss, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.loss[0], torch.nn.functional.mse_loss(model(x), y).detach(), rtol=1e-12, atol=0)


def test_outputs_are_logits_or_probabilities_per_point(digits: Dataset) -> None:
    x, y = digits.test[0][:30].double(), digits.test[1][:30]
    model = make_model("mlp:widths=[8]", digits)
    theta = ParamLayout.from_module(model).flatten(model)
    points = torch.stack([theta, theta * 0.5])
    logits = Evaluator(model, x, y, dtype=torch.float64, outputs="logits").at_points(points).outputs
    probs = Evaluator(model, x, y, dtype=torch.float64, outputs="probs").at_points(points).outputs
    assert logits is not None and probs is not None and logits.shape == (2, 30, 10)
    torch.testing.assert_close(logits[0], model(x).detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(probs, logits.softmax(-1), rtol=1e-12, atol=1e-12)


def test_subset_estimate_reports_a_standard_error_that_covers_the_full_loss(digits: Dataset) -> None:
    x, y = torch.cat([digits.train[0], digits.test[0]]), torch.cat([digits.train[1], digits.test[1]])
    model = make_model("mlp:widths=[16]", digits)
    theta = ParamLayout.from_module(model).flatten(model).unsqueeze(0)
    full = Evaluator(model, x, y, dtype=torch.float64).at_points(theta)
    assert full.stderr is None and full.n_examples == len(x)
    part = Evaluator(model, x, y, dtype=torch.float64, subset=300, seed=0)
    sub = part.at_points(theta)
    assert sub.n_examples == 300 and sub.stderr is not None and sub.stderr[0] > 0
    assert abs(sub.loss[0] - full.loss[0]) < 3 * sub.stderr[0]
    again = Evaluator(model, x, y, dtype=torch.float64, subset=300, seed=0)
    other = Evaluator(model, x, y, dtype=torch.float64, subset=300, seed=1)
    assert part.indices is not None and torch.equal(part.indices, again.indices)
    assert not torch.equal(part.indices, other.indices)
    assert torch.equal(sub.loss, again.at_points(theta).loss)


def test_subset_standard_errors_are_calibrated_across_seeds(digits: Dataset) -> None:
    x, y = torch.cat([digits.train[0], digits.test[0]]), torch.cat([digits.train[1], digits.test[1]])
    model = make_model("mlp:widths=[16]", digits)
    theta = ParamLayout.from_module(model).flatten(model).unsqueeze(0)
    full = Evaluator(model, x, y, dtype=torch.float64).at_points(theta).loss[0]
    z = []
    for seed in range(40):
        sub = Evaluator(model, x, y, dtype=torch.float64, subset=200, seed=seed).at_points(theta)
        assert sub.stderr is not None
        z.append(float((sub.loss[0] - full) / sub.stderr[0]))
    spread = torch.tensor(z).std()
    assert 0.6 < spread < 1.4  # z-scores of a calibrated standard error have unit spread


def small_problem(digits: Dataset) -> tuple[torch.nn.Module, Tensor, Tensor, Tensor, Tensor]:
    model = make_model("mlp:widths=[16]", digits).float()
    _, dirs, _ = plane(model, "filter", 0.0)
    coefs = grid_coefficients(grid_axis(-1, 1, 4), grid_axis(-1, 1, 3))
    return model, digits.test[0], digits.test[1], dirs.float(), coefs


def test_a_small_memory_budget_splits_points_and_examples_without_changing_results(digits: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    for strategy in ("per_point", "batched"):
        big = Evaluator(model, x, y, strategy=strategy)  # type: ignore[arg-type]
        small = Evaluator(model, x, y, strategy=strategy, memory_budget=200_000)  # type: ignore[arg-type]
        chunk, per_pass = small._chunking(len(coefs), dirs.shape[1])
        assert per_pass < len(x) and (strategy == "per_point" or 1 <= chunk < len(coefs))
        calls: list[tuple[int, int]] = []
        result = small.along(dirs, coefs, progress=lambda done, total, seen=calls: seen.append((done, total)))
        torch.testing.assert_close(result.loss, big.along(dirs, coefs).loss, rtol=1e-5, atol=0)
        assert calls[-1] == (12, 12) and len(calls) > 1 and calls == sorted(calls)


def test_should_cancel_stops_between_chunks(digits: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    calls: list[int] = []
    ev = Evaluator(model, x, y, strategy="per_point", memory_budget=1_000_000)
    assert ev._chunking(len(coefs), dirs.shape[1])[0] == 4  # points per chunk
    with pytest.raises(Cancelled):
        ev.along(dirs, coefs, progress=lambda done, total: calls.append(done), should_cancel=lambda: len(calls) >= 2)
    assert calls == [4, 8]


def test_results_are_deterministic(digits: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    for strategy in ("per_point", "batched"):
        a = Evaluator(model, x, y, strategy=strategy).along(dirs, coefs)  # type: ignore[arg-type]
        b = Evaluator(model, x, y, strategy=strategy).along(dirs, coefs)  # type: ignore[arg-type]
        assert torch.equal(a.loss, b.loss) and torch.equal(a.accuracy, b.accuracy)  # type: ignore[arg-type]


def test_bfloat16_autocast_on_cpu_is_close_and_float16_is_refused(digits: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    full = Evaluator(model, x, y).along(dirs, coefs)
    for strategy in ("per_point", "batched"):
        half = Evaluator(model, x, y, autocast=torch.bfloat16, strategy=strategy).along(dirs, coefs)  # type: ignore[arg-type]
        torch.testing.assert_close(half.loss, full.loss, rtol=2e-2, atol=0)
    with pytest.raises(ValueError, match="CUDA"):
        Evaluator(model, x, y, autocast=torch.float16)


def test_bad_inputs_are_refused_with_a_clear_message(digits: Dataset, digits_image: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    with pytest.raises(ValueError, match="loss"):
        Evaluator(model, x, y, loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train_x"):
        Evaluator(make_model("vgg:width=0.125", digits_image), torch.zeros(2, 1, 8, 8),
                  torch.zeros(2, dtype=torch.long), bn="recompute")
    ev = Evaluator(model, x, y)
    with pytest.raises(ValueError, match="entries"):
        ev.at_points(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="columns"):
        ev.along(dirs, coefs[:, :1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_in_both_strategies_and_under_autocast(digits_image: Dataset) -> None:
    train_x = digits_image.train[0][:128]
    x, y = digits_image.test
    model = make_model("resnet:depth=8", digits_image, warm_bn=train_x).float()
    _, dirs, _ = plane(model, "filter", 0.0)
    coefs = grid_coefficients(grid_axis(-1, 1, 3), grid_axis(-1, 1, 3))
    cpu = Evaluator(model, x, y, bn="recompute", train_x=train_x).along(dirs.float(), coefs)
    for strategy in ("per_point", "batched"):
        gpu = Evaluator(model, x, y, bn="recompute", train_x=train_x, device="cuda",
                        strategy=strategy).along(dirs.float(), coefs)  # type: ignore[arg-type]
        torch.testing.assert_close(gpu.loss, cpu.loss, rtol=1e-4, atol=0)
        for half in (torch.bfloat16, torch.float16):
            approx = Evaluator(model, x, y, bn="recompute", train_x=train_x, device="cuda", strategy=strategy,
                               autocast=half).along(dirs.float(), coefs)  # type: ignore[arg-type]
            torch.testing.assert_close(approx.loss, cpu.loss, rtol=5e-2, atol=0)


def test_evaluate_is_a_one_shot_evaluator(digits: Dataset) -> None:
    model, x, y, dirs, coefs = small_problem(digits)
    along = evaluate(model, x, y, directions=dirs, coefficients=coefs, strategy="per_point")
    theta = ParamLayout.from_module(model).flatten(model)
    at = evaluate(model, x, y, points=theta + coefs.float() @ dirs, strategy="per_point")
    torch.testing.assert_close(along.loss, at.loss, rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="either"):
        evaluate(model, x, y, directions=dirs)


class _ViewNet(torch.nn.Module):
    """A conv net that flattens with ``.view``, which a channels-last activation cannot take."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).view(len(x), -1))


def test_conv_nets_run_channels_last_on_a_cpu_unless_they_cannot(digits_image: Dataset) -> None:
    x, y = digits_image.test
    cnn = make_model("simple_cnn:channels=[4,8]", digits_image).float()
    fast = Evaluator(cnn, x, y, strategy="per_point")
    assert fast.x.is_contiguous(memory_format=torch.channels_last) and fast.model._mirrors
    plain = Evaluator(cnn, x, y, strategy="batched")  # batched passes keep the default format
    assert not plain.model._mirrors
    _, dirs, _ = plane(cnn, "filter", 0.0)
    coefs = torch.tensor([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.4]])
    torch.testing.assert_close(fast.along(dirs, coefs).loss, plain.along(dirs, coefs).loss, rtol=1e-5, atol=0)
    torch.manual_seed(0)
    net = _ViewNet()
    viewing = Evaluator(net, x, y, strategy="per_point")
    assert not viewing.model._mirrors and viewing.x.is_contiguous()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net(x), y).item()
    assert viewing.at_points(viewing.theta0.unsqueeze(0)).loss[0].item() == pytest.approx(expected, rel=1e-6)
