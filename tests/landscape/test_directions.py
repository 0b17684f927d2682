"""Directions: random, between checkpoints, PCA (Li et al. 2018 §6) and their normalization (§4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lsdb.landscape import (
    ParamLayout,
    direction_between,
    direction_gram,
    normalize_direction,
    normalize_direction_,
    orthogonalize,
    pca_directions,
    random_direction,
    random_directions,
)


@pytest.fixture
def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3)
    ).double()


def filter_norms(vec: torch.Tensor, layout: ParamLayout) -> dict[str, torch.Tensor]:
    return {
        e.name: torch.linalg.vector_norm(vec[e.offset:e.stop].view(e.shape[0], -1), dim=1)
        for e in layout.entries if e.is_filter
    }


def test_random_direction_is_seeded_and_zero_on_buffers(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net, buffers=True)
    a = random_direction(layout, seed=3, dtype=torch.float64)
    assert torch.equal(a, random_direction(layout, seed=3, dtype=torch.float64))
    assert not torch.equal(a, random_direction(layout, seed=4, dtype=torch.float64))
    assert torch.equal(a[layout.n_params:], torch.zeros(layout.numel - layout.n_params, dtype=torch.float64))
    gen = torch.Generator().manual_seed(3)
    assert torch.equal(a, random_direction(layout, generator=gen, dtype=torch.float64))


def test_filter_normalization_gives_every_filter_the_norm_of_theta_filter(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net)
    theta = layout.flatten(net)
    d = normalize_direction(random_direction(layout, seed=0, dtype=torch.float64), theta, layout, "filter")
    got, want = filter_norms(d, layout), filter_norms(theta, layout)
    assert set(got) == {"0.weight", "4.weight", "6.weight"}
    for name in got:
        torch.testing.assert_close(got[name], want[name], rtol=1e-12, atol=0)


def test_bias_and_batchnorm_vectors_follow_bias_bn(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net)
    theta = layout.flatten(net) + 0.5  # BN weights start at 1 and biases at 0: make them distinct
    d0 = random_direction(layout, seed=1, dtype=torch.float64)
    vectors = [e for e in layout.entries if not e.is_filter]
    assert {e.name for e in vectors} == {"0.bias", "1.weight", "1.bias", "4.bias", "6.bias"}
    ignored = normalize_direction(d0, theta, layout, "filter", bias_bn="ignore")
    kept = normalize_direction(d0, theta, layout, "filter", bias_bn="keep")
    copied = normalize_direction(d0, theta, layout, "filter", bias_bn="copy")
    for e in vectors:
        s = slice(e.offset, e.stop)
        assert torch.count_nonzero(ignored[s]) == 0
        torch.testing.assert_close(kept[s].norm(), theta[s].norm(), rtol=1e-12, atol=0)
        assert torch.equal(copied[s], theta[s])
    assert torch.equal(d0, random_direction(layout, seed=1, dtype=torch.float64))  # input untouched


def test_layer_normalization_rescales_whole_tensors(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net)
    theta = layout.flatten(net)
    d = normalize_direction(random_direction(layout, seed=0, dtype=torch.float64), theta, layout, "layer")
    for e in layout.entries:
        if e.is_filter:
            s = slice(e.offset, e.stop)
            torch.testing.assert_close(d[s].norm(), theta[s].norm(), rtol=1e-12, atol=0)


def test_normalization_zeroes_buffer_entries(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net, buffers=True)
    theta = layout.flatten(net)
    d = normalize_direction(torch.ones_like(theta), theta, layout, "none", bias_bn="keep")
    assert torch.count_nonzero(d[layout.n_params:]) == 0
    assert torch.equal(d[: layout.n_params], torch.ones(layout.n_params, dtype=torch.float64))


def test_zero_filters_of_the_direction_stay_zero(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net)
    theta = layout.flatten(net)
    d = torch.zeros_like(theta)
    assert torch.count_nonzero(normalize_direction(d, theta, layout)) == 0


def test_orthogonalize_makes_rows_orthogonal_and_keeps_their_norms() -> None:
    gen = torch.Generator().manual_seed(0)
    dirs = torch.randn(3, 50, generator=gen, dtype=torch.float64)
    dirs[1] += dirs[0]
    ortho = orthogonalize(dirs)
    gram = ortho @ ortho.T
    off_diagonal = gram - torch.diag(gram.diag())
    torch.testing.assert_close(off_diagonal, torch.zeros(3, 3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(ortho.norm(dim=1), dirs.norm(dim=1), rtol=1e-12, atol=0)
    assert torch.equal(ortho[0], dirs[0])


def test_pca_directions_match_numpy_svd_up_to_sign() -> None:
    gen = torch.Generator().manual_seed(0)
    trajectory = torch.cumsum(torch.randn(12, 40, generator=gen, dtype=torch.float64), dim=0)
    dirs, ratios = pca_directions(trajectory, k=3)
    m = (trajectory - trajectory[-1]).numpy()
    _, s, vh = np.linalg.svd(m, full_matrices=False)
    for i in range(3):
        sign = np.sign(vh[i] @ dirs[i].numpy())
        np.testing.assert_allclose(dirs[i].numpy(), sign * vh[i], atol=1e-10)
    np.testing.assert_allclose(ratios.numpy(), s[:3] ** 2 / (s**2).sum(), rtol=1e-10)
    assert ratios[0] >= ratios[1] >= ratios[2]


def test_pca_directions_accept_a_list_and_an_explicit_final_point() -> None:
    gen = torch.Generator().manual_seed(1)
    points = [torch.randn(20, generator=gen, dtype=torch.float64) for _ in range(5)]
    final = torch.randn(20, generator=gen, dtype=torch.float64)
    dirs, _ = pca_directions(points, final=final, k=2)
    _, _, vh = np.linalg.svd((torch.stack(points) - final).numpy(), full_matrices=False)
    np.testing.assert_allclose(np.abs(dirs.numpy() @ vh[:2].T), np.eye(2), atol=1e-10)


def test_direction_between_is_the_difference() -> None:
    a, b = torch.arange(4.0), torch.ones(4)
    assert torch.equal(direction_between(a, b), b - a)


def _stacked_rows(layout: ParamLayout, theta: torch.Tensor, dims: int, seed: int, norm: str, bias_bn: str,
                  dtype: torch.dtype) -> torch.Tensor:
    """The construction `surface` used before `random_directions`: a full temporary per row, then a stack."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([normalize_direction(random_direction(layout, generator=gen).to(dtype), theta, layout,
                                            norm, bias_bn)  # type: ignore[arg-type]
                        for _ in range(dims)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize(("norm", "bias_bn"), [("filter", "ignore"), ("layer", "keep"), ("none", "copy")])
def test_random_directions_built_in_place_equal_the_stacked_rows_bit_for_bit(
        net: nn.Module, dtype: torch.dtype, norm: str, bias_bn: str) -> None:
    layout = ParamLayout.from_module(net, buffers=True).parameters_only()
    theta = layout.flatten(net, dtype=dtype) + 0.5  # distinct bias and BatchNorm entries
    got = random_directions(layout, theta, 3, generator=torch.Generator().manual_seed(7), norm=norm,  # type: ignore[arg-type]
                            bias_bn=bias_bn)  # type: ignore[arg-type]
    want = _stacked_rows(layout, theta, 3, 7, norm, bias_bn, dtype)
    assert got.dtype == dtype and got.shape == (3, layout.n_params)
    assert torch.equal(got, want)


def test_random_directions_take_the_dtype_asked_for_against_a_theta_of_another(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net).parameters_only()
    theta = layout.flatten(net)  # float64
    got = random_directions(layout, theta, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    assert got.dtype == torch.float32
    assert torch.equal(got, _stacked_rows(layout, theta, 2, 1, "filter", "ignore", torch.float32))


def test_random_direction_into_out_equals_the_converted_draw(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net, buffers=True)
    out = torch.full((layout.numel,), 9.0, dtype=torch.bfloat16)
    assert random_direction(layout, seed=5, out=out) is out
    assert torch.equal(out, random_direction(layout, seed=5).to(torch.bfloat16))  # buffers zeroed too
    with pytest.raises(ValueError, match="out has shape"):
        random_direction(layout, seed=5, out=torch.zeros(layout.numel + 1))


def test_normalize_direction_in_place_matches_the_copying_version(net: nn.Module) -> None:
    layout = ParamLayout.from_module(net, buffers=True)
    theta = layout.flatten(net)  # float64 θ for a float32 direction: read tensor by tensor
    d = random_direction(layout, seed=2)
    want = normalize_direction(d, theta, layout, "filter", "keep")
    assert normalize_direction_(d, theta, layout, "filter", "keep") is d
    assert torch.equal(d, want) and d.dtype == torch.float32


def test_direction_gram_is_the_float64_gram_matrix_whatever_the_slices() -> None:
    gen = torch.Generator().manual_seed(0)
    dirs = torch.randn(2, 1000, generator=gen)
    want = dirs.double() @ dirs.double().T
    for chunk in (7, 1000, 4096):
        got = direction_gram(dirs, chunk=chunk)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)
    bf16 = dirs.bfloat16()
    torch.testing.assert_close(direction_gram(bf16, chunk=64), bf16.double() @ bf16.double().T, rtol=1e-13, atol=1e-13)


def test_direction_gram_with_other_rows_is_the_float64_cross_product() -> None:
    gen = torch.Generator().manual_seed(1)
    dirs, others = torch.randn(2, 500, generator=gen), torch.randn(3, 500, generator=gen)
    want = dirs.double() @ others.double().T
    torch.testing.assert_close(direction_gram(dirs, others, chunk=33), want, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="matrices"):
        direction_gram(dirs, torch.randn(3, 499))


def test_plane_coordinates_are_the_least_squares_coordinates() -> None:
    from lsdb.landscape import plane_coordinates

    gen = torch.Generator().manual_seed(2)
    dirs = torch.randn(2, 400, generator=gen)
    coefs = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    deltas = (coefs @ dirs.double()).float()  # in the plane: the coordinates come back
    torch.testing.assert_close(plane_coordinates(dirs, deltas), coefs, rtol=1e-5, atol=1e-6)
    d = dirs.double()  # off the plane: the normal equations, as computed before in one float64 copy
    noisy = deltas + 0.1 * torch.randn(5, 400, generator=gen)
    want = (torch.linalg.pinv(d @ d.T) @ (d @ noisy.double().T)).T
    torch.testing.assert_close(plane_coordinates(dirs, noisy), want, rtol=1e-12, atol=1e-12)
