"""`hessian` run directly on hand-made contexts, checked against the dense Hessian of the same digits subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lsdb_curvature.hessian import HESSIAN, HessianParams, run_hessian
from lsdb_curvature.renderers import render_hessian

from lsdb.analyses.contract import parse_params
from lsdb.errors import BadInput
from lsdb.landscape import ParamLayout
from lsdb.plotting import save_figure
from tests.curvature.curvature_factories import (
    as_view,
    digits_reference,
    make_checkpoint,
    make_context,
    make_state,
)

SUBSET = 40


@pytest.fixture(scope="module")
def exact() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(state, flat θ, dense H) of a 310-parameter digits MLP on the analyses' subset of 40 examples."""
    state = make_state(seed=1)
    theta, h = digits_reference(state, SUBSET)
    return state, theta, h


def test_eigenvalues_trace_and_density_match_the_dense_hessian(exact: tuple) -> None:
    state, theta, h = exact
    values = torch.linalg.eigvalsh(h).numpy()
    params = HessianParams(k=3, tol=1e-10, max_iter=400, subset=SUBSET, density=True, density_bins=300,
                           slq_steps=40, eigen_checkpoints=2, eigen_scale=0.5, trace_tol=0.05, trace_probes=400)
    out = run_hessian(make_context(), {"center": [make_checkpoint(state)]}, params)
    s = out.scalars
    assert s["converged"] == 1.0 and s["n_examples"] == SUBSET
    for name, value in [("lambda_max", values[-1]), ("lambda_2", values[-2]), ("lambda_3", values[-3]),
                        ("lambda_min", values[0])]:
        assert s[name] == pytest.approx(value, rel=1e-6)
    assert s["min_max_ratio"] == pytest.approx(abs(values[0] / values[-1]), rel=1e-6)
    assert abs(s["trace"] - float(h.trace())) <= 4 * s["trace_stderr"]
    assert s["hvp_count"] == s["lanczos_hvps"] + 2 + s["trace_probes"] + 3 * 40  # 2: the rounding estimate
    grid, density = out.arrays["density_grid"], out.arrays["density"]
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-9)
    vectors = torch.as_tensor(out.arrays["eigenvectors"])
    assert vectors.shape == (3, len(theta)) and out.arrays["min_eigenvector"].shape == (len(theta),)
    for value, u in zip(values[::-1][:3], vectors, strict=False):
        assert torch.linalg.vector_norm(h @ u - value * u) <= 1e-5 * abs(values).max()


def test_float32_error_bounds_are_honest_against_float64(exact: tuple) -> None:
    """The reported float32 errors cover the real error against the float64 dense Hessian; the
    Ritz bounds alone (exact arithmetic) do not."""
    state, theta, h = exact
    values = torch.linalg.eigvalsh(h).numpy()
    params = HessianParams(k=3, tol=1e-12, max_iter=400, subset=SUBSET)  # Ritz bounds collapse
    out = run_hessian(make_context(dtype=torch.float32), {"center": [make_checkpoint(state)]}, params)
    s, a = out.scalars, out.arrays
    real = np.abs(np.asarray(a["eigenvalues"]) - values[::-1][:3])
    assert (real <= a["eigenvalue_errors"]).all(), (real, a["eigenvalue_errors"])
    assert abs(s["lambda_min"] - values[0]) <= s["lambda_min_error"]
    assert (a["ritz_errors"] < real).all(), "the Ritz bounds alone miss the rounding of float32 products"
    rel = real / np.abs(values[::-1][:3])
    assert s["max_rel_error"] >= rel.max() and s["max_rel_ritz_residual"] < s["max_rel_error"]
    assert s["max_rel_error"] < 1e-4  # an honest bound, not a vacuous one
    print(f"float32 Hessian: real relative error {rel.max():.2g}, reported bound {s['max_rel_error']:.2g}, "
          f"Ritz bound alone {s['max_rel_ritz_residual']:.2g}")


def test_eigen_checkpoints_lie_along_the_eigenvectors(exact: tuple) -> None:
    state, theta, _ = exact
    params = HessianParams(k=2, tol=1e-8, max_iter=400, subset=SUBSET, trace=False, eigen_checkpoints=2,
                           eigen_scale=0.5)
    out = run_hessian(make_context(), {"center": [make_checkpoint(state)]}, params)
    assert [c.label.startswith(f"hessian eigenvector {j + 1}") for j, c in enumerate(out.checkpoints)] == [True] * 2
    layout = ParamLayout.from_state_dict(state).parameters_only()
    for j, new in enumerate(out.checkpoints):
        moved = layout.flatten(new.tensors, dtype=torch.float64)
        torch.testing.assert_close(moved - theta, 0.5 * torch.as_tensor(out.arrays["eigenvectors"][j]).double(),
                                   rtol=0, atol=1e-6)
    assert "trace" not in out.scalars and out.attrs["n_params"] == len(theta)
    assert out.attrs["parameter_names"] == list(layout.names)


def test_a_gradient_start_and_a_random_start_agree(exact: tuple) -> None:
    state, _, h = exact
    top = float(torch.linalg.eigvalsh(h)[-1])
    outs = [run_hessian(make_context(), {"center": [make_checkpoint(state)]},
                        HessianParams(k=1, tol=1e-8, subset=SUBSET, trace=False, start=start, save_eigenvectors=False))
            for start in ("gradient", "random")]
    for out in outs:
        assert out.scalars["lambda_max"] == pytest.approx(top, rel=1e-7)
        assert "eigenvectors" not in out.arrays


def test_the_renderer_draws_a_density_or_the_eigenvalues(exact: tuple, tmp_path: Path) -> None:
    state, _, _ = exact
    for density in (True, False):
        params = HessianParams(k=2, tol=1e-4, subset=SUBSET, density=density, trace_probes=20, slq_steps=20,
                               density_bins=100)
        out = run_hessian(make_context(dtype=torch.float32), {"center": [make_checkpoint(state)]}, params)
        fig = render_hessian(as_view(out, "hessian", params))
        path = save_figure(fig, tmp_path / f"hessian-{density}.png")
        assert path.read_bytes().startswith(b"\x89PNG")
        assert fig.axes[0].get_yscale() == ("log" if density else "linear")


def test_parameters_are_validated() -> None:
    with pytest.raises(BadInput, match="eigen_checkpoints"):
        parse_params(HESSIAN, {"k": "1", "eigen_checkpoints": "2"})
    with pytest.raises(BadInput, match="bn"):
        parse_params(HESSIAN, {"bn": "recompute"})
    assert parse_params(HESSIAN, {"density": "true", "slq_runs": "2"}).slq_runs == 2
