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
