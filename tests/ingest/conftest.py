"""Fixtures for ingest: real checkpoints written by torch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn


def make_state(seed: int, width: int = 8) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 3))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """make_checkpoint(name, seed=0, wrap=None, **extra) writes a torch checkpoint file."""

    def make(name: str, seed: int = 0, wrap: str | None = None, width: int = 8, **extra: object) -> Path:
        path = tmp_path / "ckpts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        state = make_state(seed, width)
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(path))
            return path
        obj: object = {wrap: state, **extra} if wrap else state
        torch.save(obj, path)
        return path

    return make


def snapshot(catalog, store: Path) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """Everything ingest could change: row counts and the files under the store."""
    from sqlalchemy import func, select

    from lsdb.catalog.models import Base

    with catalog.db.engine.connect() as conn:
        counts = tuple(
            (t.name, conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in Base.metadata.sorted_tables
        )
    files = tuple(sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())) if store.exists() else ()
    return counts, files
