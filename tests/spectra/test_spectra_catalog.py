"""The three analyses end to end through a real catalog: inline, as a job, compared, plotted; bad inputs in one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import lsdb
from lsdb.errors import BadInput
from lsdb.landscape.weight_spectra import analyze_weight_spectra
from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog
from tests.spectra.conftest import extra_plugins

MODEL = "mlp:widths=[64,32]"


def test_weight_spectrum_inline_equals_the_math_on_the_stored_weights(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=extra_plugins()) as catalog:
        ckpt = add_model_checkpoint(catalog, "r", MODEL, "digits", seed=0)
        result = run_inline(catalog, "weight-spectrum", [ckpt.id], {"min_evals": 10})
        again = run_inline(catalog, "weight-spectrum", [ckpt.id], {"min_evals": 10})
        assert again.id == result.id  # cached
        from lsdb.data import load_dataset
        from lsdb.models import build_model

        data = load_dataset("digits")
        state = build_model(MODEL, data.input_shape, data.num_classes, seed=0).state_dict()
        expected = analyze_weight_spectra(state, min_evals=10, min_size=8, generator=torch.Generator().manual_seed(0))
    s = result.scalars
    fitted = [e.metrics["alpha"] for e in expected if e.fit is not None]
    assert s["num_layers"] == len(expected) == 3 and s["num_fitted"] == len(fitted)
    assert s["mean_alpha"] == pytest.approx(float(np.mean(fitted)), rel=1e-12)
    assert s["mean_log_norm"] == pytest.approx(float(np.mean([e.metrics["log_norm"] for e in expected])), rel=1e-12)
    assert s["num_traps"] == sum(e.metrics["num_traps"] for e in expected)


def test_weight_spectrum_through_the_facade_plots_compares_and_refuses_bad_globs(
        spectra_plugin: None, db_url: str, store_root: Path, tmp_path: Path) -> None:
    cat = lsdb.open_catalog(db_url, store_root)
    try:
        for name, lr in (("a", 0.05), ("b", 0.2)):
            cat.train(name, model="mlp:widths=[32]", dataset="digits", epochs=2, lr=lr, batch_size=64)
            res = cat.run("weight-spectrum", f"{name}:last", params={})
            assert res.arrays["alpha"].shape == (2,) and list(res.attrs["layers"]) == ["1.weight", "3.weight"]
            assert res.attrs["status"][1].startswith("too small")  # 10 eigenvalues: no fit, said per layer
            assert math.isnan(res.arrays["alpha"][1]) and res.arrays["fitted"].tolist() == [1, 0]
            layer0 = res.arrays["evals"][res.arrays["evals_offsets"][0]:res.arrays["evals_offsets"][1]]
            assert len(layer0) == 32 and np.all(np.diff(layer0) >= 0)
            for kind in ("default", "esd"):
                fig = res.plot(kind)
                assert len(fig.axes) >= 1
            res.save_plot(tmp_path / f"{name}.png", kind="esd")
            assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        table = cat.compare(analysis="weight-spectrum", columns="run,lr,mean_alpha,mean_log_norm", sort="lr")
        rows = table.to_records()
        assert [r["run"] for r in rows] == ["a", "b"] and all(np.isfinite(r["mean_alpha"]) for r in rows)
        with pytest.raises(BadInput, match=r"params='nope\*' selects no weight matrix; closest names: ") as err:
            cat.run("weight-spectrum", "a:last", params={"params": "nope*"})
        assert "\n" not in str(err.value)
        traj = cat.run("weight-spectrum-trajectory", "a")
        steps = traj.arrays["steps"]
        assert len(steps) == 3 and traj.arrays["alpha"].shape == (3, 2)  # initial + 2 epochs
        last = cat.run("weight-spectrum", "a:last", params={"randomize": False})
        np.testing.assert_allclose(traj.arrays["alpha"][-1], last.arrays["alpha"], rtol=1e-12)  # NaN == NaN
        assert traj.scalars["mean_alpha_last"] == pytest.approx(last.scalars["mean_alpha"], rel=1e-12)
        assert len(traj.plot("default").axes) == 1
        # the interactive views (lsdb ui) carry the same numbers
        view = cat.interactive_renderers("weight-spectrum")["default"](last.view)
        alphas = view["data"][0]["y"]
        assert alphas[0] == pytest.approx(float(last.arrays["alpha"][0])) and alphas[1] is None  # no fit: a gap
        series = cat.interactive_renderers("weight-spectrum-trajectory")["default"](traj.view)["data"]
        assert series[-1]["name"] == "mean α" and series[-1]["y"][-1] == pytest.approx(traj.scalars["mean_alpha_last"])
    finally:
        cat.close()


def test_a_checkpoint_without_weight_matrices_is_refused_in_one_line(tmp_path: Path) -> None:
    from lsdb.ingest import add_tensors
    from lsdb.runs import make_new_run

    with temp_catalog(tmp_path, plugins=extra_plugins()) as catalog:
        record, _ = add_tensors(catalog, make_new_run("flat"), {"bias": torch.zeros(4), "scale": torch.ones(3)})
        with pytest.raises(BadInput, match="has no 2-D") as err:
            run_inline(catalog, "weight-spectrum", [record.id])
        assert "\n" not in str(err.value)
        # a bare state dict with no model or dataset spec (an HF-style checkpoint): no model is built
        gen = torch.Generator().manual_seed(0)
        bare = {"encoder.layer.0.weight": torch.randn(96, 48, generator=gen),
                "encoder.layer.0.bias": torch.zeros(96), "head.weight": torch.randn(5, 48, generator=gen)}
        record, _ = add_tensors(catalog, make_new_run("bare"), bare)
        result = run_inline(catalog, "weight-spectrum", [record.id], {"params": "encoder.*"})
        (expected,) = analyze_weight_spectra(bare, include="encoder.*", generator=torch.Generator().manual_seed(0))
        assert result.scalars["num_layers"] == 1 and result.scalars["mean_alpha"] == expected.metrics["alpha"]


def test_sharpness_inline_its_hessian_cross_references_and_as_a_job(spectra_plugin: None, db_url: str,
                                                                   store_root: Path) -> None:
    cat = lsdb.open_catalog(db_url, store_root)
    try:
        cat.train("s", model="mlp:widths=[16]", dataset="digits", epochs=1, lr=0.1)
        params = {"rho": 0.5, "m": 64, "steps": 8, "samples": 8, "hessian_tol": 1e-6, "hessian_iters": 300}
        res = cat.run("sharpness", "s:last", dtype="float64", **params)
        s = res.scalars
        assert s["n_examples"] == 64 and s["ascent_steps"] == 8 and len(res.arrays["ascent_curve"]) == 9
        assert s["worst_case"] == pytest.approx(s["loss_after"] - s["loss_before"], rel=1e-9)
        assert s["worst_case"] > s["average_case"] and s["perturbation_norm"] <= 0.5 * (1 + 1e-12)
        hessian = cat.run("hessian", "s:last", dtype="float64", subset=64, k=1, tol=1e-8, max_iter=300, trace=False)
        assert s["lambda_max"] == pytest.approx(hessian.scalars["lambda_max"], rel=1e-5)
        assert s["hessian_trace"] > 0 and s["hessian_trace_stderr"] > 0
        assert len(res.plot("default").axes) == 1
        curve = cat.interactive_renderers("sharpness")["default"](res.view)["data"][0]["y"]
        assert curve == pytest.approx(res.arrays["ascent_curve"].tolist())
        job = cat.submit("sharpness", "s:last", dtype="float64", **{**params, "hessian": False})
        assert cat.serve(device="cpu", once=True, inprocess=True) == 1
        done = job.wait(timeout_s=120)
        assert job.status == "succeeded"
        for key in ("worst_case", "average_case", "loss_before", "loss_after"):
            assert done.scalars[key] == pytest.approx(s[key], rel=1e-12)  # same seed, same numbers
        with pytest.raises(BadInput, match="nothing to compute"):
            cat.run("sharpness", "s:last", worst=False, average=False)
        with pytest.raises(BadInput, match="norm"):
            cat.run("sharpness", "s:last", norm="l1")
    finally:
        cat.close()
