"""`lsdb compare`: runs (or one analysis' results) side by side, filtered, sorted, grouped, plotted."""

from __future__ import annotations

import sys

import typer

from lsdb.cli.render import Format, render
from lsdb.cli.state import state

KEYS_HELP = (
    "Keys: run, project, run_id, status, model, dataset (and result_id, analysis with --analysis); "
    "param.K or bare K for run parameters; tag.K; metric.K (last value), metric.K.min/.max/.count; "
    "scalar.K and rparam.K (result scalars and params, with --analysis). A bare K must be unambiguous."
)
WHERE_HELP = (
    "Filter, e.g. \"lr > 0.05 AND (arch = resnet OR tag.seed IN (1, 2)) AND NOT opt LIKE 'ad%'\". "
    "Operators: = != < <= > >=, IN (...), IS [NOT] NULL, LIKE/CONTAINS 'text'; AND binds tighter than OR. "
    "Numbers compare with numeric values, quoted strings with text values; a condition on a key a row lacks is false."
)


def register(app: typer.Typer) -> None:
    app.command("compare", help=f"Compare runs, or one analysis' results, in one table. {KEYS_HELP}")(compare)


def compare(
    ctx: typer.Context,
    runs: list[str] = typer.Argument(None, help="Run names (or ids); default: every run."),
    where: str = typer.Option(None, "--where", "-w", help=WHERE_HELP),
    analysis: str = typer.Option(None, "--analysis", "-a", help="One row per result of this analysis."),
    columns: str = typer.Option(None, "--columns", "-c", help="Comma-separated keys to show."),
    sort: list[str] = typer.Option(
        None, "--sort", "-s", help="KEY, KEY:desc or -KEY (descending); comma-separated or repeated; missing last."
    ),
    group_by: str = typer.Option(None, "--group-by", "-g", help="One row per value of this key."),
    agg: str = typer.Option(
        None, "--agg", help="With --group-by: mean,std,count,min,max,median (default mean,std,count)."
    ),
    project: str = typer.Option(None, "--project"),
    format: Format = typer.Option(Format.table, "--format"),
    plot: str = typer.Option(None, "--plot", help="Also draw a figure into this .png/.svg/.pdf file."),
    x: str = typer.Option(None, "--x", help="--plot: x array (with --analysis) or x column."),
    y: str = typer.Option(None, "--y", help="--plot: y array (with --analysis) or y column."),
) -> None:
    """Compare runs or results; see `lsdb compare --help` for keys and the --where grammar."""
    catalog = state(ctx).catalog()
    table = catalog.compare(
        runs or None, where=where, analysis=analysis, columns=columns, sort=sort or None, group_by=group_by,
        agg=agg, project=project,
    )
    title = f"{analysis} results" if analysis else "runs"
    render(table.rows, format, table.columns, title=title if format is Format.table else None)
    if plot:
        report = catalog.plot_compare(
            plot, runs or None, x=x, y=y, where=where, analysis=analysis, project=project, group_by=group_by,
            sort=sort or None,
        )
        for reason in report.skipped:
            sys.stderr.write(f"skipped: {reason}\n")
        sys.stderr.write(f"wrote {report.path} ({report.n_series} series)\n")
