"""`lsdb ingest --model --dataset` refuses a checkpoint whose tensors do not fit the model."""

from __future__ import annotations

from pathlib import Path

import torch

from lsdb.data import load_dataset
from lsdb.models import build_model
from tests.ingest.conftest import snapshot


def test_ingest_of_a_checkpoint_with_other_shapes_names_the_tensor(
    cli, catalog, store_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    data = load_dataset("digits")
    path = tmp_path / "wide.pt"
    torch.save(build_model("mlp:widths=[48]", data.input_shape, data.num_classes, seed=0).state_dict(), path)
    before = snapshot(catalog, store_root)
    r = cli("ingest", path, "--run", "r", "--model", "mlp:widths=[32]", "--dataset", "digits")
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "tensor '1.weight' has shape [48, 64] but the run's model expects [32, 64]" in lines[0]
    assert snapshot(catalog, store_root) == before
