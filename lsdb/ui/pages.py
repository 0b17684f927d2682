"""Server-rendered HTML of the UI's pages. Every value that can come from a user (run names, tags,
parameters, `--where` text, error messages) goes through `esc`; URLs are built with `url`.

Pages carry no inline script (the Content-Security-Policy forbids it): `/static/app.js` finds the
``.lsdb-figure`` divs and draws the plotly JSON their ``data-src`` names, and runs the Jobs page.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from lsdb.service import format_spec

DOWNLOADS = ("hdf5", "npz", "csv", "json", "vtk", "html", "png")
TERMINAL = ("succeeded", "failed", "cancelled")


def esc(value: object) -> str:
    """`value` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, **query: Any) -> str:
    """`path` plus the query (lists repeat the key; None and "" are dropped), escaped for an attribute."""
    items: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        items += [(key, str(v)) for v in values if v is not None and v != ""]
    return esc(path + ("?" + urlencode(items) if items else ""))


def fmt(value: object) -> str:
    """A cell: floats to 4 significant digits, dicts as k=v, escaped."""
    if isinstance(value, float):
        return esc(f"{value:.4g}")
    if isinstance(value, Mapping):
        return esc(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()))
    return esc(value)


def when(ms: int | None) -> str:
    return esc(dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "")


def layout(title: str, body: str, token: str | None = None, active: str = "") -> str:
    """The page frame: navigation, the write token (when this browser may write) and the scripts."""
    nav = "".join(f'<a href="{href}" class="{"active" if name == active else ""}">{name}</a>'
                  for name, href in (("Runs", "/runs"), ("Compare", "/compare"), ("Jobs", "/jobs")))
    meta = f'<meta name="lsdb-token" content="{esc(token)}">' if token else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · lsdb</title>{meta}"
        '<link rel="stylesheet" href="/static/style.css">'
        '<script src="/static/plotly.min.js" defer></script><script src="/static/app.js" defer></script>'
        f'</head><body><header><a class="brand" href="/runs">lsdb</a><nav>{nav}</nav></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """An HTML table; `headers` are escaped here, `rows` are cells already rendered (escaped) by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(items: Mapping[str, Any], empty: str = "none") -> str:
    if not items:
        return f'<p class="muted">{esc(empty)}</p>'
    return table(["key", "value"], ([esc(k), fmt(v)] for k, v in items.items()), "kv")


def error_line(message: str | None) -> str:
    return f'<p class="error" role="alert">{esc(message)}</p>' if message else ""


def pager(path: str, total: int, offset: int, limit: int, query: Mapping[str, Any]) -> str:
    """"rows a–b of N" with previous/next links."""
    if total <= 0:
        return '<p class="muted">no rows</p>'
    links = []
    if offset > 0:
        links.append(f'<a rel="prev" href="{url(path, **query, offset=max(0, offset - limit), limit=limit)}">'
                     "&larr; previous</a>")
    if offset + limit < total:
        links.append(f'<a rel="next" href="{url(path, **query, offset=offset + limit, limit=limit)}">next &rarr;</a>')
    end = min(total, offset + limit)
    return f'<p class="pager">rows {offset + 1}–{end} of <span class="total">{total}</span> {" ".join(links)}</p>'


def figure_div(src: str, name: str) -> str:
    """A div app.js fills with the plotly figure at `src`."""
    return (f'<section class="figure"><h3>{esc(name)}</h3>'
            f'<div class="lsdb-figure" data-src="{esc(src)}" data-name="{esc(name)}"></div></section>')


def run_link(run: Any) -> str:
    return f'<a href="{url(f"/runs/{run.id}")}">{esc(run.name)}</a>'


# -- pages ------------------------------------------------------------------------------------------
def runs_page(page: Any, query: Mapping[str, Any], error: str | None, analyses: Sequence[str],
              token: str | None) -> str:
    """Runs: the filter form, the paged table with checkboxes, and a form to compare the chosen runs."""
    where, sort = query.get("where") or "", query.get("sort") or ""
    form = (
        '<form class="filter" method="get" action="/runs">'
        f'<label>--where <input name="where" size="60" value="{esc(where)}" '
        'placeholder="lr &gt; 0.05 AND tag.seed IN (1, 2)"></label> '
        f'<label>sort <input name="sort" size="18" value="{esc(sort)}" placeholder="-metric.test_acc"></label>'
        f'<input type="hidden" name="limit" value="{esc(page.limit if page else 50)}">'
        ' <button type="submit">Filter</button></form>'
    )
    if page is None:
        return layout("Runs", form + error_line(error), token, "Runs")
    rows = []
    for run in page.runs:
        rows.append([
            f'<input type="checkbox" name="runs" value="{esc(run.id)}" aria-label="select {esc(run.name)}">',
            run_link(run), esc(run.project), esc(format_spec(run.model_spec)), esc(format_spec(run.dataset_spec)),
            esc(run.status), esc(run.n_checkpoints), fmt(run.params), fmt(run.tags), fmt(run.metrics),
        ])
    options = "".join(f'<option value="{esc(a)}">{esc(a)}</option>' for a in analyses)
    compare = (
        '<form class="compare" method="get" action="/compare">'
        + table(["", "run", "project", "model", "dataset", "status", "checkpoints", "parameters", "tags",
                 "last metrics"], rows, "runs")
        + f'<p><label>analysis <select name="analysis"><option value="">(runs)</option>{options}</select></label>'
        ' <button type="submit" id="compare-selected">Compare selected</button></p></form>'
    )
    return layout("Runs", form + error_line(error) + pager("/runs", page.total, page.offset, page.limit,
                                                           {"where": where, "sort": sort}) + compare, token, "Runs")


def run_page(run: Any, results: Sequence[Any], checkpoints: Sequence[Any], ckpt_offset: int, ckpt_limit: int,
             has_metrics: bool, token: str | None) -> str:
    """Run: specs, parameters and tags, metric charts, the trajectory's checkpoints (paged) and results."""
    facts = {"project": run.project, "model": format_spec(run.model_spec), "dataset": format_spec(run.dataset_spec),
             "loss": run.loss, "status": run.status, "created": when(run.created_at), "checkpoints": run.n_checkpoints}
    parts = ['<div class="cols"><section><h2>Run</h2>', kv_table(facts), "</section>",
             "<section><h2>Parameters</h2>", kv_table(run.params), "</section>",
             "<section><h2>Tags</h2>", kv_table(run.tags), "</section></div>"]
    parts.append("<h2>Metrics</h2>")
    parts.append(figure_div(f"/api/runs/{run.id}/metrics.json", "metrics") if has_metrics
                 else '<p class="muted">no metrics logged</p>')
    parts.append("<h2>Results</h2>")
    parts.append(table(["id", "analysis", "inputs", "scalars"], (
        [f'<a href="{url(f"/results/{r.id}")}">{esc(r.id)}</a>', esc(r.analysis),
         esc(", ".join(f"{i.role}={i.run}:{i.step}" for i in r.inputs)), fmt(dict(list(r.scalars.items())[:6]))]
        for r in results), "results") if results else '<p class="muted">no results yet</p>')
    parts.append("<h2>Checkpoints (trajectory)</h2>")
    parts.append(pager(f"/runs/{run.id}", run.n_checkpoints, ckpt_offset, ckpt_limit, {}))
    parts.append(table(["id", "step", "epoch", "label", "parameters", "digest"], (
        [esc(c.id), esc(c.step), fmt(c.epoch), esc(c.label), esc(c.n_params), esc(c.tensor_digest[:12])]
        for c in checkpoints), "checkpoints"))
    return layout(f"Run {run.name}", "".join(parts), token, "Runs")


def result_page(result: Any, interactive: Sequence[str], png: Sequence[str], run_ids: Mapping[tuple[str, str], int],
                token: str | None) -> str:
    """Result: the analysis' own views, parameters, linked inputs, scalars and downloads."""
    parts = []
    if interactive:
        parts += [figure_div(f"/results/{result.id}/figure/{quote(k)}.json", k) for k in interactive]
    elif png:
        parts += [f'<section class="figure"><h3>{esc(k)}</h3><img alt="{esc(k)} plot" '
                  f'src="{url(f"/results/{result.id}/plot/{quote(k)}.png")}"></section>' for k in png]
    else:
        parts.append('<p class="muted">this analysis has no renderer; download its data below</p>')
    inputs = []
    for i in result.inputs:
        rid = run_ids.get((i.project, i.run))
        name = f'<a href="{url(f"/runs/{rid}")}">{esc(i.run)}</a>' if rid is not None else esc(i.run)
        inputs.append([esc(i.role), esc(i.position), name, esc(i.step), fmt(i.epoch), esc(i.checkpoint_id)])
    links = " ".join(f'<a class="download" href="{url(f"/results/{result.id}/download/{f}")}">{f}</a>'
                     for f in DOWNLOADS if f != "png" or png)
    parts += [
        '<div class="cols"><section><h2>Parameters</h2>', kv_table(result.params), "</section>",
        "<section><h2>Scalars</h2>", kv_table(result.scalars), "</section></div>",
        "<h2>Inputs</h2>", table(["role", "position", "run", "step", "epoch", "checkpoint"], inputs, "inputs"),
        f"<h2>Downloads</h2><p>{links}</p>",
        f'<p class="muted">computed in {fmt(result.wall_seconds)} s</p>',
    ]
    return layout(f"Result {result.id}: {result.analysis}", "".join(parts), token, "Runs")


def compare_page(query: Mapping[str, Any], table_: Any, offset: int, limit: int, error: str | None,
                 analyses: Sequence[str], figure_src: str | None, token: str | None) -> str:
    """Compare: the `lsdb compare` table of the chosen runs or results, paged, with CSV and figures."""
    options = "".join(f'<option value="{esc(a)}"{" selected" if a == query.get("analysis") else ""}>{esc(a)}</option>'
                      for a in analyses)
    hidden = "".join(f'<input type="hidden" name="runs" value="{esc(r)}">' for r in query.get("runs") or [])
    form = (
        f'<form class="filter" method="get" action="/compare">{hidden}'
        f'<label>--where <input name="where" size="50" value="{esc(query.get("where"))}"></label> '
        f'<label>analysis <select name="analysis"><option value="">(runs)</option>{options}</select></label> '
        f'<label>columns <input name="columns" size="24" value="{esc(query.get("columns"))}"></label> '
        f'<label>sort <input name="sort" size="16" value="{esc(query.get("sort"))}"></label> '
        '<button type="submit">Compare</button></form>'
    )
    if table_ is None:
        return layout("Compare", form + error_line(error), token, "Compare")
    shown = table_.rows[offset:offset + limit]
    body = table(table_.columns, ([fmt(row.get(c)) for c in table_.columns] for row in shown), "compare")
    csv_link = f'<p><a class="download" id="csv" href="{url("/compare.csv", **query)}">CSV</a></p>'
    figure = figure_div(figure_src, "results overlaid" if query.get("analysis") else "") if figure_src else ""
    return layout("Compare", form + error_line(error) + pager("/compare", len(table_.rows), offset, limit, query)
                  + body + csv_link + figure, token, "Compare")


def jobs_page(state: Mapping[str, Any], token: str | None, allow_writes: bool) -> str:
    """Jobs: the queue and the workers, first rendered here, then refreshed by app.js (polling /jobs/live)."""
    note = ("" if allow_writes else
            '<p class="muted">read-only: start <code>lsdb ui --allow-writes</code> to cancel or retry jobs</p>')
    return layout("Jobs", note + jobs_tables(state, token is not None), token, "Jobs")


def jobs_tables(state: Mapping[str, Any], can_write: bool) -> str:
    rows = []
    for j in state["jobs"]:
        pct = round(100 * float(j["progress"]))
        actions = ""
        if can_write and j["status"] in ("queued", "running", "waiting"):
            actions = f'<button class="job-action" data-action="cancel" data-job="{esc(j["id"])}">cancel</button>'
        elif can_write and j["status"] in ("failed", "cancelled"):
            actions = f'<button class="job-action" data-action="retry" data-job="{esc(j["id"])}">retry</button>'
        rid = j.get("result_id")
        result = f'<a href="{url(f"/results/{rid}")}">{esc(rid)}</a>' if rid else ""
        status = esc(j["status"])
        rows.append([esc(j["id"]), esc(j["analysis"]), f'<span class="status {status}">{status}</span>',
                     f'<progress max="100" value="{pct}"></progress> <span class="pct">{pct}%</span> '
                     f'<span class="muted">{esc(j.get("message"))}</span>', esc(j["attempt"]), esc(j["queue"]),
                     result, actions])
    jobs = table(["id", "analysis", "status", "progress", "attempt", "queue", "result", ""], rows, "jobs")
    workers = table(["worker", "device", "status", "current job", "alive"], (
        [esc(w["id"]), esc(w["device"]), esc(w["status"]), esc(w["current_job"]), esc("yes" if w["alive"] else "no")]
        for w in state["workers"]), "workers")
    return f'<div id="jobs-live"><h2>Queue</h2>{jobs}<h2>Workers</h2>{workers}</div>'


def not_found(message: str, token: str | None = None) -> str:
    return layout("Not found", error_line(message), token)
