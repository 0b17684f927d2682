"""The example plugin's own tests, written with `lsdb.testing`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lsdb.testing import add_model_checkpoint, run_inline, temp_catalog


def test_norms_match_torch(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=["lsdb_layernorms.plugin"]) as catalog:
        a = add_model_checkpoint(catalog, "r", "mlp:widths=[16]", "digits", seed=0, step=0)
        b = add_model_checkpoint(catalog, "r", "mlp:widths=[16]", "digits", seed=1, step=1)
        result = run_inline(catalog, "layer-norms", [a.id, b.id])
        from safetensors.torch import load_file

        sa = load_file(str(catalog.objects.path(a.blob_digest)))
        sb = load_file(str(catalog.objects.path(b.blob_digest)))
        total = torch.sqrt(sum((v.double() ** 2).sum() for v in sa.values())).item()
        dist = torch.sqrt(sum(((sb[k].double() - v.double()) ** 2).sum() for k, v in sa.items())).item()
        assert np.isclose(result.scalars["total_norm"], total)
        assert np.isclose(result.scalars["distance"], dist)


def test_renderer_draws(tmp_path: Path) -> None:
    from lsdb.analyses.exporting import plot_result

    with temp_catalog(tmp_path, plugins=["lsdb_layernorms.plugin"]) as catalog:
        a = add_model_checkpoint(catalog, "r", "mlp:widths=[16]", "digits", seed=0)
        result = run_inline(catalog, "layer-norms", [a.id])
        out = plot_result(catalog, result.id, "default", tmp_path / "n.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_declared_analysis_keeps_its_contract() -> None:
    import dataclasses

    from lsdb_layernorms.plugin import layer_norms

    from lsdb.plugin import AnalysisSpec, Slot

    assert isinstance(layer_norms, AnalysisSpec)
    assert (layer_norms.name, layer_norms.version, layer_norms.needs_data) == ("layer-norms", 1, False)
    assert layer_norms.inputs == (
        Slot("theta"),
        Slot("other", min=0, max=1, help="a later checkpoint of the same model"),
    )
    fields = {f.name: f for f in dataclasses.fields(layer_norms.params)}
    assert {n: f.default for n, f in fields.items()} == {"include_buffers": False, "min_numel": 1}
    assert fields["min_numel"].metadata["min"] == 1


def test_params_reach_the_function(tmp_path: Path) -> None:
    with temp_catalog(tmp_path, plugins=["lsdb_layernorms.plugin"]) as catalog:
        a = add_model_checkpoint(catalog, "r", "mlp:widths=[16]", "digits", seed=0)
        everything = run_inline(catalog, "layer-norms", [a.id])
        big_only = run_inline(catalog, "layer-norms", [a.id], {"min_numel": "100"})
        assert big_only.params["min_numel"] == 100
        assert big_only.scalars["total_norm"] < everything.scalars["total_norm"]  # the biases are skipped
