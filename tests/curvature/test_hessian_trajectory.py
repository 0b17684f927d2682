"""`hessian-trajectory` against dense Hessians of a real training run, warm vs cold, bad inputs, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lsdb_curvature.hessian_trajectory import HessianTrajectoryParams, run_hessian_trajectory
from lsdb_curvature.renderers import render_hessian_trajectory

import lsdb
from lsdb.analyses import InputCheckpoint
from lsdb.data import load_dataset
from lsdb.errors import BadInput
from lsdb.landscape.training import TrainConfig, TrainState, train
from lsdb.models import build_model
from lsdb.plotting import save_figure
from tests.curvature.curvature_factories import DIGITS, MLP, as_view, digits_reference, make_context, make_state

SUBSET = 40


def make_trajectory_checkpoint(state: dict[str, torch.Tensor], step: int, run: str = "r") -> InputCheckpoint:
    frozen = {k: v.clone() for k, v in state.items()}
    return InputCheckpoint(id=step + 1, run=run, project="p", step=step, epoch=None, label=None,
                           tensor_digest=f"t{step}", schema_digest="s", model_spec=None, dataset_spec=None,
                           loss="cross_entropy", _loader=lambda: {k: v.clone() for k, v in frozen.items()})


@pytest.fixture(scope="module")
def trajectory() -> list[tuple[int, dict[str, torch.Tensor]]]:
    """(step, state) every 4 SGD steps of the first epoch of a 310-parameter digits MLP (lsdb's own training)."""
    data = load_dataset(DIGITS)
    model = build_model(MLP, data.input_shape, data.num_classes, seed=1)
    saved: list[tuple[int, dict[str, torch.Tensor]]] = []

    def save(snapshot: TrainState) -> None:
        saved.append((snapshot.step, {k: v.detach().clone() for k, v in model.state_dict().items()}))

    train(model, data.train, None, TrainConfig(epochs=1, save_every=4, save_unit="steps", lr=0.2, seed=0),
          on_save=save)
    return saved[:5]


def run(trajectory: list[tuple[int, dict[str, torch.Tensor]]], dtype: torch.dtype = torch.float64,
        **params: object) -> tuple[dict, dict]:
    checkpoints = [make_trajectory_checkpoint(state, step) for step, state in reversed(trajectory)]  # by_step sorts
    out = run_hessian_trajectory(make_context(dtype=dtype), {"trajectory": checkpoints},
                                 HessianTrajectoryParams(subset=SUBSET, **params))  # type: ignore[arg-type]
    return out.arrays, out.scalars


def test_eigenvalues_at_every_checkpoint_match_the_dense_hessian(trajectory: list) -> None:
    tol = 1e-7
    arrays, scalars = run(trajectory, k=2, tol=tol, max_iter=300, lambda_min=True)
    spectra = np.stack([torch.linalg.eigvalsh(digits_reference(state, SUBSET)[1]).numpy() for _, state in trajectory])
    exact = spectra[:, ::-1][:, :2]
    np.testing.assert_array_equal(arrays["steps"], [step for step, _ in trajectory])
    assert arrays["eigenvalues"].shape == arrays["eigenvalue_errors"].shape == (len(trajectory), 2)
    assert arrays["converged"].tolist() == [1] * len(trajectory)
    real = np.abs(arrays["eigenvalues"] - exact)
    assert (real <= tol * np.abs(exact)).all(), real / np.abs(exact)
    radius = np.abs(spectra).max(axis=1)
    reference_rounding = 1e-13 * radius[:, None]  # the dense reference's own float64 rounding
    assert (real <= arrays["eigenvalue_errors"] + reference_rounding).all()
    real_min = np.abs(arrays["lambda_min"] - spectra[:, 0])  # resolved relative to the spectral radius
    assert (real_min <= tol * radius).all()
    assert (real_min <= arrays["lambda_min_errors"] + reference_rounding[:, 0]).all()
    lam = exact[:, 0]
    assert scalars["lambda_max_first"] == pytest.approx(lam[0], rel=tol)
    assert scalars["lambda_max_last"] == pytest.approx(lam[-1], rel=tol)
    assert scalars["lambda_max_max"] == pytest.approx(lam.max(), rel=tol)
    assert scalars["step_of_lambda_max_max"] == trajectory[int(lam.argmax())][0]
    assert scalars["total_hvps"] == arrays["hvps"].sum() and scalars["num_checkpoints"] == len(trajectory)
    assert (arrays["hvps"] == arrays["iterations"] + 2).all()  # 2: the rounding estimate
    for i, (_, state) in enumerate(trajectory):  # the loss is the mean cross-entropy on the same subset
        net = build_model(MLP, load_dataset(DIGITS).input_shape, 10).double()
        net.load_state_dict(state)
        x, y = load_dataset(DIGITS).split("train")
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:SUBSET].sort().values
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(net(x[idx].double()), y[idx])
        assert arrays["loss"][i] == pytest.approx(float(loss), rel=1e-10)


def test_warm_and_cold_starts_agree(trajectory: list) -> None:
    tol = 1e-4
    warm, warm_s = run(trajectory, dtype=torch.float32, k=1, tol=tol)
    cold, cold_s = run(trajectory, dtype=torch.float32, k=1, tol=tol, warm_start=False)
    np.testing.assert_allclose(warm["eigenvalues"], cold["eigenvalues"], rtol=2 * tol)
    assert warm["hvps"][0] == cold["hvps"][0]  # the first checkpoint starts from the gradient either way
    print(f"warm start: {warm_s['total_hvps']:.0f} Hessian-vector products, cold: {cold_s['total_hvps']:.0f}")


def test_the_renderer_draws_eigenvalues_against_the_step(trajectory: list, tmp_path: Path) -> None:
    params = HessianTrajectoryParams(k=2, subset=SUBSET)
    checkpoints = [make_trajectory_checkpoint(state, step) for step, state in trajectory[:3]]
    out = run_hessian_trajectory(make_context(dtype=torch.float32), {"trajectory": checkpoints}, params)
    fig = render_hessian_trajectory(as_view(out, "hessian-trajectory", params))
    assert save_figure(fig, tmp_path / "trajectory.png").read_bytes().startswith(b"\x89PNG")
    assert len(fig.axes[0].containers) == 2  # one error-bar series per eigenvalue


def test_bad_trajectories_are_refused_in_one_line(trajectory: list) -> None:
    with pytest.raises(BadInput, match="no checkpoints"):
        run_hessian_trajectory(make_context(), {"trajectory": []}, HessianTrajectoryParams())
    wider = make_state(model={"name": "mlp", "kwargs": {"widths": [5]}}, seed=0)
    checkpoints = [make_trajectory_checkpoint(trajectory[0][1], 0), make_trajectory_checkpoint(wider, 4)]
    with pytest.raises(BadInput, match=r"r@step 4 has 385 parameters but r@step 0 has 310") as err:
        run_hessian_trajectory(make_context(), {"trajectory": checkpoints}, HessianTrajectoryParams(subset=SUBSET))
    assert "\n" not in str(err.value)
    renamed = {f"x{k}": v for k, v in trajectory[1][1].items()}  # the same size, not the model's tensors
    checkpoints = [make_trajectory_checkpoint(trajectory[0][1], 0), make_trajectory_checkpoint(renamed, 4)]
    with pytest.raises(BadInput, match=r"^r@step 4: checkpoint lacks tensor") as err:
        run_hessian_trajectory(make_context(), {"trajectory": checkpoints}, HessianTrajectoryParams(subset=SUBSET))
    assert "\n" not in str(err.value)


def test_a_run_through_the_cli_matches_hessian_at_its_last_checkpoint(cli, sqlite_url: str,  # type: ignore[no-untyped-def]
                                                                      store_root: Path, tmp_path: Path) -> None:
    cat = lsdb.open_catalog(sqlite_url, store_root)
    try:
        cat.train("a", model="mlp:widths=[4]", dataset="digits", epochs=2, lr=0.1, batch_size=64)
        out = cli("run", "hessian-trajectory", "a", "-p", f"subset={SUBSET}", "-p", "k=2", "--inline",
                  "--format", "json")
        assert out.exit_code == 0, out.stderr
        traj = cat.result(json.loads(out.stdout)["id"])
        last = cat.run("hessian", "a:last", params={"k": 2, "subset": SUBSET, "trace": False})
        assert traj.arrays["eigenvalues"].shape == (3, 2)  # initial + 2 epochs
        np.testing.assert_allclose(traj.arrays["eigenvalues"][-1], last.arrays["eigenvalues"], rtol=2e-4)
        assert traj.scalars["lambda_max_last"] == pytest.approx(last.scalars["lambda_max"], rel=2e-4)
        assert len(traj.plot("default").axes) == 2  # eigenvalues and the loss axis
        empty = cli("run", "hessian-trajectory", "nope", "--inline")
        assert empty.exit_code != 0 and len(empty.stderr.strip().splitlines()) == 1
    finally:
        cat.close()
