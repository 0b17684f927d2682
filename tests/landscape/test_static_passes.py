"""Batched passes over static buffers (`StaticPasses`): the CUDA-graph path's padding, slicing and caching,
run eagerly on a CPU with the same code, and recorded as graphs where CUDA is present."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lsdb.data import Dataset
from lsdb.landscape import Evaluator, ParamLayout, bf16_autocast, grid_axis, grid_coefficients
from lsdb.landscape import evaluator as evaluator_module
from lsdb.landscape.static_passes import StaticPasses
from tests.landscape.conftest import make_model
from tests.landscape.references import reference_losses
from tests.landscape.test_evaluator import plane


@pytest.fixture
def static_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the static-buffer path on the CPU too (eagerly: a CPU has no graphs)."""
    monkeypatch.setattr(evaluator_module, "STATIC_PASS_DEVICES", ("cuda", "cpu"))


def _affine(weights: Tensor) -> tuple[StaticPasses, list[tuple[Tensor, slice]]]:
    calls: list[tuple[Tensor, slice]] = []

    def forward(buffer: Tensor, rows: slice) -> Tensor:
        calls.append((buffer, rows))
        return buffer[:, None, :] * weights[rows][None, :, :]  # (B, rows, W): each point alone

    rows = [slice(0, 3), slice(3, 5)]
    return StaticPasses(forward, 4, 2, rows, device=torch.device("cpu"), dtype=torch.float64, record=True), calls


def test_a_short_chunk_is_padded_and_only_its_own_outputs_come_back() -> None:
    weights = torch.arange(10.0, dtype=torch.float64).view(5, 2)
    passes, calls = _affine(weights)
    points = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    outs = [(rows, out.clone()) for rows, out in passes.run(points)]
    assert [rows for rows, _ in outs] == passes.rows
    for rows, out in outs:
        torch.testing.assert_close(out, points[:, None, :] * weights[rows][None], rtol=0, atol=0)
    assert torch.equal(passes.buffer[2:], points[-1:].expand(2, -1))  # padding: copies of the last point
    assert all(buffer is passes.buffer for buffer, _ in calls)  # always the same static buffer
    assert not passes.recorded and passes.failure is None  # a CPU records nothing


def test_a_chunk_that_does_not_fit_the_buffer_is_refused() -> None:
    passes, _ = _affine(torch.ones(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="a chunk of"):
        list(passes.run(torch.ones(5, 2, dtype=torch.float64)))
    with pytest.raises(ValueError, match="a chunk of"):
        list(passes.run(torch.ones(2, 3, dtype=torch.float64)))


def _problem(data: Dataset, spec: str) -> tuple[torch.nn.Module, Tensor, Tensor, Tensor, Tensor, Tensor]:
    x, y = data.test[0][:48].double(), data.test[1][:48]
    model = make_model(spec, data, warm_bn=data.train[0][:64])
    theta, dirs, _ = plane(model, "filter", 0.0)
    coefs = grid_coefficients(grid_axis(-1, 1, 5), grid_axis(-1, 1, 3))  # 15 points in 3 lines of 5
    return model, x, y, theta, dirs, coefs


@pytest.mark.usefixtures("static_on_cpu")
@pytest.mark.parametrize("spec", ["mlp:widths=[16,16]", "resnet:depth=8"])
def test_static_passes_equal_the_reference_with_padding_and_split_data(
        spec: str, digits: Dataset, digits_image: Dataset) -> None:
    data = digits_image if spec.startswith("resnet") else digits
    model, x, y, theta, dirs, coefs = _problem(data, spec)
    want, want_acc = reference_losses(model, theta + coefs @ dirs, x, y)
    # a budget that splits both the points (chunks shorter than a line of 5: padded) and the examples
    probe = Evaluator(model, x, y, dtype=torch.float64, strategy="batched")
    budget = 3 * (20 * probe._example_bytes + probe.layout.numel * 8) + 1
    ev = Evaluator(model, x, y, dtype=torch.float64, strategy="batched", batch_size=20, memory_budget=budget)
    chunk, per_pass = ev._chunking(len(coefs), ev.layout.numel)
    assert chunk == 3 and per_pass == 20
    got = ev.along(dirs, coefs, group=5)
    assert ev._static is not None
    passes = ev._static[1]
    assert passes.size == 3 and [(r.start, r.stop) for r in passes.rows] == [(0, 20), (20, 40), (40, 48)]
    torch.testing.assert_close(got.loss, want, rtol=1e-10, atol=0)
    torch.testing.assert_close(got.accuracy, want_acc, rtol=0, atol=0)
    assert not got.graphed
    plain = Evaluator(model, x, y, dtype=torch.float64, strategy="batched", batch_size=20, cuda_graphs=False,
                      memory_budget=budget)
    torch.testing.assert_close(got.loss, plain.along(dirs, coefs, group=5).loss, rtol=1e-12, atol=0)
    assert plain._static is None


@pytest.mark.usefixtures("static_on_cpu")
def test_passes_are_kept_for_the_same_shapes_and_rebuilt_when_the_arithmetic_changes(digits: Dataset) -> None:
    model, x, y, _, dirs, coefs = _problem(digits, "mlp:widths=[16,16]")
    model = model.float()
    ev = Evaluator(model, x.float(), y, strategy="batched")
    first = ev.along(dirs.float(), coefs)
    assert ev._static is not None
    kept = ev._static[1]
    again = ev.along(dirs.float(), coefs)
    assert ev._static[1] is kept and torch.equal(first.loss, again.loss)
    with bf16_autocast("cpu"):
        low = ev.along(dirs.float(), coefs)
    assert ev._static[1] is not kept  # a recording holds the kernels of one arithmetic
    torch.testing.assert_close(low.loss, first.loss, rtol=2e-2, atol=0)
    layout = ParamLayout.from_module(model, buffers=True)
    centre = ev.at_points(layout.flatten(model).unsqueeze(0))  # another width and a single point
    torch.testing.assert_close(centre.loss[0], first.loss[len(coefs) // 2], rtol=1e-5, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("spec", ["mlp:widths=[16,16]", "resnet:depth=8"])
def test_cuda_graphs_replay_the_reference_losses(spec: str, digits: Dataset, digits_image: Dataset) -> None:
    data = digits_image if spec.startswith("resnet") else digits
    model, x, y, theta, dirs, coefs = _problem(data, spec)
    want, _ = reference_losses(model, theta + coefs @ dirs, x, y)
    model = model.float()
    probe = Evaluator(model, x.float(), y, strategy="batched", device="cuda")
    budget = 3 * (20 * probe._example_bytes + probe.layout.numel * 4) + 1
    ev = Evaluator(model, x.float(), y, strategy="batched", device="cuda", batch_size=20, memory_budget=budget)
    got = ev.along(dirs.float(), coefs, group=5)
    assert ev._static is not None and ev._static[1].failure is None
    assert got.graphed
    torch.testing.assert_close(got.loss, want, rtol=1e-5, atol=0)
    eager = Evaluator(model, x.float(), y, strategy="batched", device="cuda", cuda_graphs=False).along(
        dirs.float(), coefs)
    assert not eager.graphed
    torch.testing.assert_close(got.loss, eager.loss, rtol=1e-6, atol=0)


class _HostSync(torch.nn.Module):
    """A forward that copies to the host: runs eagerly, cannot be recorded as a CUDA graph."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x).cpu().to(x.device)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_pass_that_cannot_be_recorded_runs_eagerly_with_the_same_losses(digits: Dataset) -> None:
    x, y = digits.test[0][:64], digits.test[1][:64]
    model = _HostSync()
    layout = ParamLayout.from_module(model)
    points = layout.flatten(model) + 0.01 * torch.randn(5, layout.numel, generator=torch.Generator().manual_seed(0))
    ev = Evaluator(model, x, y, strategy="batched", device="cuda")
    got = ev.at_points(points)
    assert not got.graphed and ev._static is not None and ev._static[1].failure
    want = Evaluator(model, x, y, strategy="per_point").at_points(points)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-5, atol=0)
