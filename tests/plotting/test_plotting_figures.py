"""`save_figure`: the suffix names the format; the file appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from lsdb.errors import BadInput
from lsdb.plotting import FIGURE_FORMATS, save_figure


def _figure() -> Figure:
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


@pytest.mark.parametrize(("suffix", "magic"), [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-"), ("SVG", b"<?xml")])
def test_the_suffix_picks_the_format(tmp_path: Path, suffix: str, magic: bytes) -> None:
    path = save_figure(_figure(), tmp_path / "sub" / f"fig.{suffix}")
    data = path.read_bytes()
    assert data.startswith(magic)
    if suffix.lower() == "svg":
        assert b"<svg" in data
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    assert FIGURE_FORMATS == ("png", "svg", "pdf")
    with pytest.raises(BadInput, match="png, .svg or .pdf"):
        save_figure(_figure(), tmp_path / "fig.jpg")
    assert not list(tmp_path.iterdir())
