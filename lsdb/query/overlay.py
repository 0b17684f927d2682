"""`lsdb compare --plot`: several runs' results in one figure.

With ``--analysis`` (e.g. ``interpolate``, or a 1D ``surface``) each selected result's 1D curve is
read from its HDF5 artifact and overlaid: the x array is ``--x`` or the first of `X_ARRAYS` the
artifact holds (else the point index), the y array ``--y`` or the first of `Y_ARRAYS`. Without
``--analysis`` it plots two table columns against each other (``--x KEY --y KEY``), one series per
``--group-by`` value. Figures use matplotlib's object API (no pyplot, no global state) and are
saved in the format the file's suffix names.

This module reads no database: it takes the catalog's compare table and result digests through the
two small protocols below (the catalog's `CompareRepository` and `ResultRepository` satisfy them)
and the artifacts from an `ObjectStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsdb.errors import BadInput
from lsdb.query.table import CompareTable

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from lsdb.store import ObjectStore

FORMATS = ("png", "svg", "pdf")
X_ARRAYS = ("alpha", "x", "t", "coords", "steps")
"""Array names tried, in order, for a curve's x axis."""
Y_ARRAYS = ("train_loss", "loss", "test_loss", "train_acc", "test_acc")
"""Array names tried, in order, for a curve's y axis."""


class CompareSource(Protocol):
    """What draws the rows: `CompareRepository.table`."""

    def table(
        self,
        runs: Sequence[str | int] | None = None,
        where: str | None = None,
        analysis: str | None = None,
        columns: str | Sequence[str] | None = None,
        sort: str | Sequence[str] | None = None,
        group_by: str | None = None,
        agg: str | Sequence[str] | None = None,
        project: str | None = None,
    ) -> CompareTable: ...


class DigestSource(Protocol):
    """Where the results' artifacts are: `ResultRepository.artifact_digests`."""

    def artifact_digests(self, ids: Iterable[int]) -> dict[int, str | None]: ...


@dataclass(frozen=True)
class Curve:
    """One line: its legend label and points."""

    label: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class PlotReport:
    """What `plot_compare` drew: the file, how many lines, and why some results were left out."""

    path: Path
    n_series: int
    skipped: list[str] = field(default_factory=list)


def _check_path(out: Path | str) -> Path:
    path = Path(out)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise BadInput(f"--plot: cannot write '{path.name}'; use a .png, .svg or .pdf file name")
    return path


def _pick(arrays: dict[str, np.ndarray], wanted: str | None, candidates: Sequence[str]) -> str | None:
    if wanted is not None:
        return wanted if wanted in arrays and arrays[wanted].ndim == 1 else None
    return next((n for n in candidates if n in arrays and arrays[n].ndim == 1), None)


def result_curves(
    results: DigestSource,
    objects: ObjectStore,
    pairs: Sequence[tuple[int, str]],
    x: str | None = None,
    y: str | None = None,
) -> tuple[list[Curve], list[str], tuple[str, str]]:
    """The 1D curves of (result id, label) pairs from their artifacts, the reasons some were skipped,
    and the (x, y) array names used for the axis labels."""
    import numpy as np

    from lsdb.store import read_artifact

    digests = results.artifact_digests([rid for rid, _ in pairs])
    curves: list[Curve] = []
    skipped: list[str] = []
    names: tuple[str, str] | None = None
    for rid, label in pairs:
        digest = digests.get(rid)
        if not digest:
            skipped.append(f"result {rid} has no artifact")
            continue
        path = objects.path(digest)
        if not path.is_file():
            skipped.append(f"result {rid}: artifact {digest[:12]} is missing from the store")
            continue
        arrays, _ = read_artifact(path)
        y_name = _pick(arrays, y, Y_ARRAYS)
        if y_name is None:
            skipped.append(f"result {rid} has no 1D array {y or ' / '.join(Y_ARRAYS)}")
            continue
        y_values = np.asarray(arrays[y_name], dtype=float)
        x_name = _pick(arrays, x, X_ARRAYS)
        if x_name is not None and arrays[x_name].shape == y_values.shape:
            x_values = np.asarray(arrays[x_name], dtype=float)
        elif x is not None:
            skipped.append(f"result {rid} has no 1D array '{x}' as long as '{y_name}'")
            continue
        else:
            x_name, x_values = "index", np.arange(len(y_values), dtype=float)
        names = names or (x_name, y_name)
        curves.append(Curve(label, x_values, y_values))
    return curves, skipped, names or (x or "x", y or "y")


def curves_figure(curves: Sequence[Curve], xlabel: str, ylabel: str, title: str | None = None) -> Figure:
    """A line plot of `curves` on one axis, with a legend when there are several."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for curve in curves:
        ax.plot(curve.x, curve.y, marker="o" if len(curve.x) <= 25 else None, markersize=3, label=curve.label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize="small")
    return fig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def column_curves(rows: Sequence[dict[str, Any]], x: str, y: str, series: str | None) -> list[Curve]:
    """One curve per value of column `series` (or one in all) of the rows' numeric (x, y) pairs, by x."""
    import numpy as np

    groups: dict[Any, list[tuple[float, float]]] = {}
    for row in rows:
        if _is_number(row.get(x)) and _is_number(row.get(y)):
            groups.setdefault(row.get(series) if series else y, []).append((float(row[x]), float(row[y])))
    curves = []
    for value, points in sorted(groups.items(), key=lambda kv: str(kv[0])):
        points.sort()
        name = f"{series}={value}" if series else str(value)
        curves.append(Curve(name, np.array([p[0] for p in points]), np.array([p[1] for p in points])))
    return curves


def plot_compare(
    compare: CompareSource,
    results: DigestSource,
    objects: ObjectStore,
    out: Path | str,
    *,
    x: str | None = None,
    y: str | None = None,
    runs: Sequence[str | int] | None = None,
    where: str | None = None,
    analysis: str | None = None,
    project: str | None = None,
    group_by: str | None = None,
    sort: str | Sequence[str] | None = None,
) -> PlotReport:
    """Draw the rows `compare.table` selects into `out` (see the module docstring); BadInput if nothing to draw."""
    path = _check_path(out)
    skipped: list[str] = []
    if analysis is not None:
        table = compare.table(runs, where, analysis, columns=["result_id", "run"], sort=sort, project=project)
        pairs = [(int(r["result_id"]), f"{r['run'] or '?'} #{r['result_id']}") for r in table.rows]
        curves, skipped, (xlabel, ylabel) = result_curves(results, objects, pairs, x, y)
        title: str | None = analysis
        if not curves:
            why = "; ".join(skipped[:3]) or f"no '{analysis}' results match"
            raise BadInput(f"--plot: nothing to plot ({why})")
    else:
        if not x or not y:
            raise BadInput("--plot without --analysis plots one column against another: pass --x KEY and --y KEY")
        columns = list(dict.fromkeys([x, y, *([group_by] if group_by else [])]))
        table = compare.table(runs, where, None, columns=columns, project=project)
        curves = column_curves(table.rows, x, y, group_by)
        xlabel, ylabel, title = x, y, None
        if not curves:
            raise BadInput(f"--plot: no run has numbers in both '{x}' and '{y}'")
    fig = curves_figure(curves, xlabel, ylabel, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix.lower().lstrip("."))
    return PlotReport(path, len(curves), skipped)
