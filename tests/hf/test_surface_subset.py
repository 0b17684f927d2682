"""`surface -p subset=N`: a seeded subset of blocks and the standard error of its mean loss, checked against
transformers' own per-block losses averaged by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import lsdb
from lsdb.data.text import text
from lsdb.models.registry import build_model

from .conftest import TINY_GPT2


def test_a_subset_surface_reports_the_mean_and_standard_error_of_transformers_per_block_losses(
        db_url: str, store_root: Path, tmp_path: Path, corpus: Path) -> None:
    ds = text(str(corpus), block=32, max_examples=24)
    model = build_model(TINY_GPT2, ds.input_shape, ds.num_classes, seed=0).eval()
    model._forward_hooks.clear()  # transformers' own forward and loss
    model.save_pretrained(tmp_path / "m")
    x, _ = ds.train
    n_total, n = len(x), 7
    picked = torch.randperm(n_total, generator=torch.Generator().manual_seed(0))[:n].sort().values  # the seed's subset
    with torch.no_grad():
        per_block = np.array([float(model(input_ids=x[i:i + 1], labels=x[i:i + 1]).loss) for i in picked])
    mean = per_block.mean()
    se = per_block.std(ddof=1) / math.sqrt(n) * math.sqrt(1 - n / n_total)  # finite population correction

    cat = lsdb.open_catalog(db_url, store_root)
    try:
        cat.ingest([tmp_path / "m"], "m", dataset=f"text:path={corpus},block=32,max_examples=24")
        result = cat.run("surface", "m", xnum=3, ynum=3, subset=n, device="cpu", dtype="float64")
        full = cat.run("surface", "m", xnum=3, ynum=3, device="cpu", dtype="float64")
    finally:
        cat.close()
    assert result.scalars["center_loss"] == pytest.approx(mean, rel=1e-6)
    assert result.scalars["center_loss_se"] == pytest.approx(se, rel=1e-4)  # per-block losses in float32 here
    loss_se = result.arrays["loss_se"]
    assert loss_se.shape == result.arrays["loss"].shape == (3, 3)
    assert loss_se[1, 1] == pytest.approx(se, rel=1e-4) and np.all(loss_se > 0)
    assert "loss_se" not in full.arrays and "center_loss_se" not in full.scalars  # the whole split: no estimate
