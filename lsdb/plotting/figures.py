"""Saving a figure to a file whose suffix names the format (png, svg or pdf)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from lsdb.errors import BadInput

#: The file formats `save_figure` writes, by suffix.
FIGURE_FORMATS = ("png", "svg", "pdf")


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write `fig` to `path` in the format its suffix names; returns the path.

    The file is written beside its destination and moved into place, so a reader never sees
    a half-written figure. An unknown suffix is a `BadInput`.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise BadInput(f"cannot save a figure as '{path.name}'; use a .png, .svg or .pdf file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
