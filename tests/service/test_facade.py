"""`lsdb.Catalog`, the Python API: the README's notebook snippet, results, jobs, compare parity with the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lsdb

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    """The Python block right after the README's ``<!-- notebook-snippet -->`` marker."""
    text = README.read_text()
    match = re.search(r"<!-- notebook-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its notebook snippet"
    return match.group(1)


def test_the_readme_snippet_is_five_lines_from_import_to_a_plotted_surface(tmp_path: Path) -> None:
    code = readme_snippet()
    lines = [ln for ln in code.splitlines() if ln.strip()]
    assert len(lines) == 5 and lines[0] == "import lsdb"
    probe = code + (
        "\nimport json\n"
        "from matplotlib.figure import Figure\n"
        "print(json.dumps({'fig': isinstance(fig, Figure), 'shape': list(result.arrays['loss'].shape),"
        " 'center': result.scalars['center_loss'], 'axes': len(fig.axes)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["fig"] and report["axes"] >= 1
    assert report["shape"] == [21, 21]
    assert 0 < report["center"] < 1.0  # a trained digits MLP
    assert (tmp_path / "demo.sqlite").exists()


@pytest.fixture
def api(db_url: str, store_root: Path) -> lsdb.Catalog:
    cat = lsdb.open_catalog(db_url, store_root)
    yield cat
    cat.close()


def test_the_facade_offers_the_users_verbs_and_no_queue_internals() -> None:
    public = {n for n in dir(lsdb.Catalog) if not n.startswith("_")}
    assert {"ingest", "train", "record", "run", "submit", "job", "jobs", "results", "result", "compare", "export",
            "plot", "runs", "checkpoints"} <= public
    assert not public & {"claim_job", "heartbeat", "reap_expired", "complete_job", "fail_job", "release_job",
                         "register_worker", "add_result", "add_checkpoint", "engine"}


def test_run_returns_arrays_equal_to_a_direct_evaluation(api: lsdb.Catalog) -> None:
    import torch
    from safetensors.torch import load_file

    from lsdb.data import load_dataset
    from lsdb.models import build_model

    api.train("r", model="mlp:widths=[8]", dataset="synthetic:n=64", epochs=2, batch_size=16)
    result = api.run("interpolate", "r:first", "r:last", steps=3, splits=["train"])
    assert result.computed and result.analysis == "interpolate"
    assert set(result.params) >= {"steps"} and result.params["steps"] == 3
    assert {i.role for i in result.inputs} == {"start", "end"}
    alphas, losses = result.arrays["alpha"], result.arrays["train_loss"]
    assert alphas.shape == losses.shape and 0.0 in alphas and 1.0 in alphas
    # the end points equal a plain forward pass of each checkpoint
    data = load_dataset("synthetic:n=64")
    x, y = data.train
    for ckpt, alpha in ((api.checkpoints("r")[0], 0.0), (api.checkpoints("r")[-1], 1.0)):
        net = build_model("mlp:widths=[8]", data.input_shape, data.num_classes)
        net.load_state_dict(load_file(str(api._db.objects.path(ckpt.blob_digest))))  # noqa: SLF001
        direct = torch.nn.functional.cross_entropy(net.eval()(x), y).item()
        assert losses[int(np.flatnonzero(alphas == alpha)[0])] == pytest.approx(direct, rel=1e-5)
    again = api.run("interpolate", "r:first", "r:last", steps=3, splits=["train"])
    assert again.id == result.id and not again.computed  # the cache answers


def test_a_result_plots_exports_and_reloads(api: lsdb.Catalog, tmp_path: Path) -> None:
    api.train("r", model="mlp:widths=[8]", dataset="synthetic:n=64", epochs=1)
    result = api.run("surface", "r:last", xnum=3, ynum=3)
    assert set(result.plot_kinds) >= {"default", "contour", "3d"}
    assert result.plot(kind="contour").axes
    path = result.export("npz", tmp_path / "s.npz")
    assert np.array_equal(np.load(path)["loss"], result.arrays["loss"])
    same = api.result(result.id)
    assert same.scalars == result.scalars and np.array_equal(same.arrays["loss"], result.arrays["loss"])
    assert [r.id for r in api.results(run="r", analysis="surface")] == [result.id]
    with pytest.raises(lsdb.BadInput, match="no renderer 'nope'"):
        result.plot(kind="nope")


def test_parameters_given_twice_are_refused(api: lsdb.Catalog) -> None:
    with pytest.raises(lsdb.BadInput, match="given twice"):
        api.run("surface", "x:last", params={"xnum": 3}, xnum=4)


def test_submit_then_a_worker_then_wait_gives_the_inline_numbers(api: lsdb.Catalog) -> None:
    api.train("r", model="mlp:widths=[8]", dataset="synthetic:n=64", epochs=1)
    job = api.submit("surface", "r:last", dims=1, xnum=5)
    assert job.id is not None and job.status == "queued" and job.created
    assert api.serve(device="cpu", once=True, inprocess=True) == 1
    result = job.wait(timeout_s=60)
    assert job.status == "succeeded" and result.record.job_id == job.id
    again = api.submit("surface", "r:last", dims=1, xnum=5)
    assert again.id is None and again.wait().id == result.id  # stored: no new job
    inline = api.run("surface", "r:last", dims=1, xnum=5, force=True)
    np.testing.assert_array_equal(inline.arrays["loss"], result.arrays["loss"])


def test_compare_returns_the_rows_the_cli_prints(api: lsdb.Catalog, db_url: str, store_root: Path) -> None:
    from typer.testing import CliRunner

    from lsdb.cli.app import app

    for name, lr in (("a", 0.05), ("b", 0.1)):
        api.train(name, model="mlp:widths=[8]", dataset="synthetic:n=64", epochs=1, lr=lr)
        api.run("surface", f"{name}:last", dims=1, xnum=3)
    args = dict(where="lr < 0.2", analysis="surface", columns="run,lr,center_loss,sharpness", sort="-lr")
    table = api.compare(**args)
    cli = CliRunner().invoke(app, ["--db", db_url, "--store", str(store_root), "compare", "--where", args["where"],
                                   "--analysis", "surface", "--columns", args["columns"], "--sort", "-lr",
                                   "--format", "json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout) == table.to_records()
    assert [r["run"] for r in table.to_records()] == ["b", "a"]
    assert table.columns == ["run", "lr", "center_loss", "sharpness"] and len(table) == 2
    pd = pytest.importorskip("pandas")
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == table.columns


def test_to_pandas_without_pandas_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsdb.query.table import CompareTable

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(lsdb.BadInput, match="pip install pandas"):
        CompareTable(["a"], [{"a": 1}]).to_pandas()
    assert CompareTable(["a", "b"], [{"a": 1}]).to_records() == [{"a": 1, "b": None}]
