"""The runner end to end through the CLI, with a test plugin whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch


def _direct_loss(catalog, checkpoint_id: int, split: str = "train") -> float:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file

    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    model = build_model("mlp:widths=[16]", data.input_shape, data.num_classes)
    rec = catalog.checkpoints.get(checkpoint_id)
    model.load_state_dict(load_file(str(catalog.objects.path(rec.blob_digest))))
    x, y = data.split(split)
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(x), y).item()


def test_inline_run_matches_direct_computation_and_caches(cli, catalog, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    r = cli("run", "loss-at", "mlp:last", "-p", "split=test", "--inline", "--format", "json")
    assert r.exit_code == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["computed"] is True
    assert abs(first["scalars"]["loss"] - _direct_loss(catalog, 2, "test")) < 1e-5
    again = json.loads(cli("run", "loss-at", "2", "-p", "split=test", "--inline", "--format", "json").stdout)
    assert again["id"] == first["id"] and again["computed"] is False
    forced = json.loads(
        cli("run", "loss-at", "2", "-p", "split=test", "--inline", "--force", "--format", "json").stdout
    )
    assert forced["computed"] is True and forced["cache_key"] == first["cache_key"]
    assert len(catalog.results.list()) == 1


def test_params_change_the_cache_key(cli, catalog, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    a = json.loads(cli("run", "loss-at", "mlp:first", "--inline", "--format", "json").stdout)
    b = json.loads(cli("run", "loss-at", "mlp:first", "-p", "scale=0.5", "--inline", "--format", "json").stdout)
    assert a["cache_key"] != b["cache_key"] and a["scalars"]["loss"] != b["scalars"]["loss"]


def test_artifact_is_plain_hdf5_with_metadata(cli, catalog, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    res = json.loads(cli("run", "loss-at", "1", "--inline", "--format", "json").stdout)
    path = catalog.objects.path(res["artifact_digest"])
    with h5py.File(path, "r") as f:
        assert f["logits"].shape == (5, 10)
        assert f.attrs["analysis"] == "loss-at"
        assert json.loads(f.attrs["params"])["split"] == "train"
        assert catalog.checkpoints.get(1).tensor_digest in f.attrs["inputs"]


def test_produced_checkpoints_link_to_their_result(cli, catalog, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    res = json.loads(cli("run", "average", "1", "2", "--inline", "--format", "json").stdout)
    assert len(res["produced"]) == 1
    avg = catalog.checkpoints.get(res["produced"][0])
    assert avg.produced_by == res["id"] and avg.label == "average"
    # analyses' checkpoints are not part of the run's trajectory
    from lsdb.analyses.inputs import trajectory_of

    assert [c.id for c in trajectory_of(catalog, "mlp")] == [1, 2]


def test_export_formats(cli, catalog, sample_plugin, digits_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = json.loads(cli("run", "loss-at", "1", "--inline", "--format", "json").stdout)
    for fmt in ("npz", "csv", "json"):
        out = tmp_path / f"r.{fmt}"
        r = cli("results", "export", str(res["id"]), "--format", fmt, "-o", out)
        assert r.exit_code == 0, r.stderr
        assert out.exists()
    npz = np.load(tmp_path / "r.npz")
    assert float(npz["scalar__loss"]) == res["scalars"]["loss"]
    assert json.loads((tmp_path / "r.json").read_text())["scalars"] == res["scalars"]


def test_listings(cli, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    cli("run", "loss-at", "1", "--inline")
    assert json.loads(cli("results", "--run", "mlp", "--format", "json").stdout)[0]["analysis"] == "loss-at"
    assert json.loads(cli("results", "--analysis", "average", "--format", "json").stdout) == []
    assert cli("results", "show", "1").exit_code == 0
    names = [a["analysis"] for a in json.loads(cli("analyses", "--format", "json").stdout)]
    assert {"loss-at", "average"} <= set(names)
    shown = json.loads(cli("analyses", "show", "loss-at", "--format", "json").stdout)
    assert {p["name"] for p in shown["params"]} == {"split", "scale"}
    plugins = json.loads(cli("plugins", "--format", "json").stdout)
    sample = next(p for p in plugins if p["plugin"] == "tests.analyses.sample_plugin")
    assert sample["analyses"] == ["loss-at", "average"] and sample["error"] is None


# --- bad input ---------------------------------------------------------------------------


def _error(r) -> str:  # type: ignore[no-untyped-def]
    assert r.exit_code != 0
    return r.stderr.strip().splitlines()[-1]


def test_unknown_analysis_lists_them(cli, sample_plugin) -> None:  # type: ignore[no-untyped-def]
    assert "available:" in _error(cli("run", "nope", "--inline")) and "loss-at" in _error(
        cli("run", "nope", "--inline")
    )


def test_wrong_number_of_inputs(cli, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    assert "too many" in _error(cli("run", "loss-at", "1", "2", "--inline"))
    assert "needs 1 checkpoint" in _error(cli("run", "loss-at", "--inline"))
    assert "at least 2" in _error(cli("run", "average", "1", "--inline"))
    assert "not found" in _error(cli("run", "loss-at", "999", "--inline"))
    assert "no checkpoint at step" in _error(cli("run", "loss-at", "mlp:12345", "--inline"))


def test_bad_params(cli, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    msg = _error(cli("run", "loss-at", "1", "-p", "bogus=1", "--inline"))
    assert "unknown parameter 'bogus'" in msg and "split" in msg and "scale" in msg
    assert "must be float" in _error(cli("run", "loss-at", "1", "-p", "scale=abc", "--inline"))
    assert ">= 0.0" in _error(cli("run", "loss-at", "1", "-p", "scale=-1", "--inline"))
    assert "one of train, test" in _error(cli("run", "loss-at", "1", "-p", "split=val", "--inline"))


def test_different_schemas_name_the_layers(cli, catalog, sample_plugin, digits_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lsdb.models import build_model

    other = build_model("mlp:widths=[8]", (64,), 10, seed=0)
    torch.save(other.state_dict(), tmp_path / "o.pt")
    cli("ingest", tmp_path / "o.pt", "--run", "other")
    msg = _error(cli("run", "average", "1", "other:last", "--inline"))
    assert "different schemas" in msg and "net.0.weight" in msg or "weight" in msg


def test_missing_result_and_renderer(cli, sample_plugin, digits_run) -> None:  # type: ignore[no-untyped-def]
    assert "not found" in _error(cli("results", "show", "77"))
    cli("run", "loss-at", "1", "--inline")
    assert "no renderer" in _error(cli("plot", "1"))
