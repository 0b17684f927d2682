from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture
def sample_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from lsdb.plugins import reset_plugins

    monkeypatch.setenv("LSDB_EXTRA_PLUGINS", "tests.analyses.sample_plugin")
    reset_plugins()
    yield
    monkeypatch.delenv("LSDB_EXTRA_PLUGINS")
    reset_plugins()


@pytest.fixture
def digits_run(cli, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A run 'mlp' with two checkpoints of an mlp:widths=[16] on digits (ids 1 and 2)."""
    from lsdb.data import load_dataset
    from lsdb.models import build_model

    data = load_dataset("digits")
    for seed in (0, 1):
        model = build_model("mlp:widths=[16]", data.input_shape, data.num_classes, seed=seed)
        torch.save(model.state_dict(), tmp_path / f"m{seed}.pt")
    r = cli(
        "ingest",
        tmp_path / "m0.pt",
        tmp_path / "m1.pt",
        "--run",
        "mlp",
        "--model",
        "mlp:widths=[16]",
        "--dataset",
        "digits",
    )
    assert r.exit_code == 0, r.stderr
    return "mlp"
