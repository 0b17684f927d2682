"""`Result`: one stored analysis result as a user handles it (arrays, scalars, plots, exports).

A `Result` wraps the catalog's frozen `ResultRecord` and reads the HDF5 artifact only when its
arrays are first asked for. It is what `Catalog.run`, `Catalog.result` and `Job.wait` return, and
what `lsdb results show` renders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from lsdb.analyses.view import ResultView
    from lsdb.catalog import ResultInputRecord, ResultRecord


class Result:
    """A stored result: ``.arrays`` (NumPy), ``.scalars``, ``.params``, ``.inputs``, ``.plot(kind=...)``."""

    def __init__(
        self,
        record: ResultRecord,
        load_view: Callable[[ResultRecord], ResultView],
        renderers: Callable[[str], dict[str, Callable[[ResultView], Figure]]],
        computed: bool = False,
    ) -> None:
        self.record = record
        self.computed = computed
        self._load_view = load_view
        self._renderers = renderers

    # -- identity and small data (from the catalog row) -------------------------------------------
    @property
    def id(self) -> int:
        return self.record.id

    @property
    def analysis(self) -> str:
        return self.record.analysis

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.record.params)

    @property
    def scalars(self) -> dict[str, float]:
        return dict(self.record.scalars)

    @property
    def inputs(self) -> list[ResultInputRecord]:
        return list(self.record.inputs)

    @property
    def wall_seconds(self) -> float | None:
        return self.record.wall_seconds

    # -- arrays (from the artifact, read once) ----------------------------------------------------
    @functools.cached_property
    def view(self) -> ResultView:
        """The result as renderers and exporters see it (arrays read from the store)."""
        return self._load_view(self.record)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self.view.arrays)

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.view.attrs)

    # -- plots and exports ------------------------------------------------------------------------
    @property
    def plot_kinds(self) -> list[str]:
        """The renderer names this result's analysis has (``kind`` values of `plot`)."""
        return sorted(self._renderers(self.analysis))

    def plot(self, kind: str = "default") -> Figure:
        """A matplotlib figure drawn by the analysis' renderer `kind` (see `plot_kinds`)."""
        from lsdb.analyses.exporting import render

        return render(self.view, self._renderers(self.analysis), kind)

    def save_plot(self, path: str | Path | None = None, kind: str = "default") -> Path:
        """`plot` saved as png, svg or pdf (default ``result-ID-KIND.png``)."""
        from lsdb.analyses.exporting import save_figure

        return save_figure(self.plot(kind), Path(path or f"result-{self.id}-{kind}.png"))

    def export(self, format: str = "npz", path: str | Path | None = None) -> Path:
        """Write the arrays and scalars as npz, csv or json (default ``result-ID.FORMAT``)."""
        from lsdb.analyses.exporting import export_view

        return export_view(self.view, format, Path(path) if path is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "computed": self.computed}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.record.scalars.items())[:4])
        return f"<Result {self.id} {self.analysis}{': ' + shown if shown else ''}>"
