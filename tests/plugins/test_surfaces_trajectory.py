"""`trajectory` against a NumPy SVD of the trajectory matrix (Li et al. 2018, §6)."""

from __future__ import annotations

import numpy as np
import pytest
from lsdb_surfaces.trajectory import TRAJECTORY, TrajectoryParams

from lsdb.analyses.contract import parse_params
from lsdb.errors import BadInput
from tests.plugins.surfaces_factories import (
    digits_trajectory,
    flat_parameters,
    make_context,
    reference_loss,
    trajectory_checkpoints,
)


def _run(checkpoints, **params):  # type: ignore[no-untyped-def]
    return TRAJECTORY.run(make_context(), {"trajectory": checkpoints}, TrajectoryParams(**params))


def test_pca_matches_numpy_svd_and_the_final_point_is_the_origin() -> None:
    checkpoints = trajectory_checkpoints()
    out = _run(list(reversed(checkpoints)), xnum=5, ynum=4)  # ordered by step inside
    points = np.stack([flat_parameters(s) for _, s in digits_trajectory()])
    m = points - points[-1]
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    expected = m @ vt[:2].T
    coords = out.arrays["coords"]
    signs = np.sign((coords * expected).sum(axis=0))
    np.testing.assert_allclose(coords, expected * signs, atol=1e-8)
    np.testing.assert_allclose(coords[-1], 0.0, atol=1e-12)
    ratios = s**2 / (s**2).sum()
    k = min(len(points) - 1, 10)
    np.testing.assert_allclose(out.arrays["explained_variance_ratio"], ratios[:k], rtol=1e-9)
    assert out.scalars["explained_variance_1"] == pytest.approx(ratios[0], rel=1e-9)
    assert out.scalars["explained_variance_2"] == pytest.approx(ratios[1], rel=1e-9)
    np.testing.assert_array_equal(out.arrays["steps"], [step for step, _ in digits_trajectory()])
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1).sum()
    assert out.scalars["path_length"] == pytest.approx(lengths, rel=1e-9)
    assert out.scalars["projected_path_length"] <= out.scalars["path_length"] * (1 + 1e-9)


def test_path_losses_are_the_checkpoints_losses_and_the_grid_covers_the_path() -> None:
    states = digits_trajectory()
    out = _run(trajectory_checkpoints(), xnum=6, ynum=5, margin=0.25, split="test")
    for i in (0, len(states) - 1):
        loss, acc = reference_loss(states[i][1], "test")
        assert out.arrays["path_loss"][i] == pytest.approx(loss, rel=1e-10)
        assert out.arrays["path_acc"][i] == pytest.approx(acc, abs=1e-12)
    assert out.scalars["final_loss"] == pytest.approx(reference_loss(states[-1][1], "test")[0], rel=1e-10)
    x, y, coords = out.arrays["x"], out.arrays["y"], out.arrays["coords"]
    assert out.arrays["loss"].shape == (5, 6) and out.arrays["acc"].shape == (5, 6)
    extent = np.ptp(coords[:, 0])
    assert x[0] == pytest.approx(coords[:, 0].min() - 0.25 * extent) and x[-1] == pytest.approx(
        coords[:, 0].max() + 0.25 * extent
    )
    assert y[0] < coords[:, 1].min() and y[-1] > coords[:, 1].max()
    assert out.scalars["min_loss"] <= out.scalars["max_loss"]


def test_two_checkpoints_make_a_line_with_no_second_component() -> None:
    checkpoints = trajectory_checkpoints()
    out = _run([checkpoints[0], checkpoints[-1]], xnum=3, ynum=3)
    assert out.arrays["explained_variance_ratio"].shape == (1,)
    assert out.scalars["explained_variance_1"] == pytest.approx(1.0)
    assert out.scalars["explained_variance_2"] == 0.0
    np.testing.assert_allclose(out.arrays["coords"][:, 1], 0.0, atol=1e-9)
    assert out.scalars["projected_path_length"] == pytest.approx(out.scalars["path_length"], rel=1e-9)


def test_a_single_checkpoint_is_refused() -> None:
    with pytest.raises(BadInput, match="at least 2"):
        _run(trajectory_checkpoints()[:1])
    with pytest.raises(BadInput):
        parse_params(TRAJECTORY, {"margin": "-0.1"})
    assert parse_params(TRAJECTORY, {"split": "test", "xnum": "3"}) == TrajectoryParams(split="test", xnum=3)
