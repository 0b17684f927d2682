"""The Starlette application: routes, each a thin call into the facade (`lsdb.service.Catalog`).

Pages: ``/runs`` (filter with the `--where` grammar, sort, page, pick runs to compare),
``/runs/{ref}`` (metrics, checkpoints, results, tags, parameters), ``/results/{id}`` (the
analysis' views, inputs, scalars, downloads), ``/compare`` (the compare table, CSV, overlays),
``/jobs`` (queue and workers, refreshed live; cancel and retry with `--allow-writes`).
JSON: ``/results/{id}/figure/{kind}.json``, ``/api/runs/{id}/metrics.json``,
``/api/compare/figure.json``, ``/api/jobs``. Endpoints are plain functions: Starlette runs them in
its thread pool, so a slow query never blocks the event loop.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lsdb.errors import BadInput, LsdbError, NotFound
from lsdb.service import Catalog
from lsdb.ui import figures, pages
from lsdb.ui.security import COOKIE, HEADER, UiConfig

CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_PAGE = 500


def create_app(catalog: Catalog, config: UiConfig | None = None) -> Starlette:
    """The UI over `catalog` (which the caller owns and closes); `config`: writes, token, page size."""
    ui = _Ui(catalog, config or UiConfig())
    routes = [
        Route("/", lambda request: RedirectResponse("/runs", 302)),
        Route("/runs", ui.runs), Route("/runs/{ref}", ui.run), Route("/results/{rid:int}", ui.result),
        Route("/results/{rid:int}/figure/{kind}.json", ui.result_figure),
        Route("/results/{rid:int}/plot/{kind}.png", ui.result_png),
        Route("/results/{rid:int}/download/{fmt}", ui.download),
        Route("/compare", ui.compare), Route("/compare.csv", ui.compare_csv),
        Route("/api/compare/figure.json", ui.compare_figure), Route("/api/runs/{rid:int}/metrics.json", ui.metrics),
        Route("/jobs", ui.jobs), Route("/jobs/live", ui.jobs_live), Route("/api/jobs", ui.jobs_json),
        Route("/jobs/{jid:int}/{action}", ui.job_action, methods=["POST"]),
        Route("/static/{name}", ui.static), Route("/healthz", lambda request: PlainTextResponse("ok")),
    ]
    app = Starlette(routes=routes, exception_handlers={LsdbError: ui.error},
                    middleware=[Middleware(SecurityHeaders)])
    app.state.ui = ui
    return app


class SecurityHeaders:
    """ASGI middleware adding the Content-Security-Policy (no inline script) and friends to every response."""

    HEADERS = ((b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def to_json(obj: Any) -> str:
    """JSON with NaN/inf as null and NumPy values as plain numbers."""
    def clean(o: Any) -> Any:
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if hasattr(o, "tolist"):
            return clean(o.tolist())
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return o

    return json.dumps(clean(obj), allow_nan=False, default=str)


def _json(obj: Any) -> Response:
    return Response(to_json(obj), media_type="application/json")


def _int(request: Request, name: str, default: int, lo: int = 0, hi: int = 10**9) -> int:
    try:
        return min(hi, max(lo, int(request.query_params.get(name, default))))
    except ValueError:
        raise BadInput(f"{name} must be an integer") from None


class _Ui:
    """The endpoints, over one catalog and one `UiConfig`."""

    def __init__(self, catalog: Catalog, config: UiConfig) -> None:
        self.catalog = catalog
        self.config = config

    # -- helpers --------------------------------------------------------------------------------
    def token(self, request: Request) -> str | None:
        return self.config.page_token(request.cookies.get(COOKIE))

    def html(self, request: Request, body: str, status: int = 200) -> Response:
        response = HTMLResponse(body, status)
        given = request.query_params.get("token")
        if given is not None and self.config.token_ok(given):
            response.set_cookie(COOKIE, self.config.token, httponly=True, samesite="strict")
        return response

    def error(self, request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFound) else 400
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if request.url.path.startswith("/api/") or request.url.path.endswith(".json"):
            return JSONResponse({"error": message}, status)
        return HTMLResponse(pages.layout("Error", pages.error_line(message), self.token(request)), status)

    def analyses(self) -> list[str]:
        return [a.name for a in self.catalog.analyses()]

    # -- runs -----------------------------------------------------------------------------------
    def runs(self, request: Request) -> Response:
        q = request.query_params
        query = {"where": q.get("where", "").strip(), "sort": q.get("sort", "").strip()}
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", self.config.page_size, 1, MAX_PAGE)
        try:
            page = self.catalog.runs_page(query["where"] or None, sort=query["sort"] or None, offset=offset,
                                          limit=limit)
            error = None
        except LsdbError as exc:
            page, error = None, str(exc).splitlines()[0]
        body = pages.runs_page(page, query, error, self.analyses(), self.token(request))
        return self.html(request, body, 200 if error is None else 400)

    def run(self, request: Request) -> Response:
        ref = request.path_params["ref"]
        project = request.query_params.get("project") or None
        run = self.catalog.get_run(int(ref) if ref.isdigit() else ref, project)
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, 1, MAX_PAGE)
        checkpoints = self.catalog.checkpoints(run.id, limit=offset + limit)[offset:]
        results = self.catalog.results(run=run.id)
        has_metrics = bool(run.metrics)
        body = pages.run_page(run, results, checkpoints, offset, limit, has_metrics, self.token(request))
        return self.html(request, body)

    def metrics(self, request: Request) -> Response:
        return _json(figures.metrics_figure(self.catalog.metrics(request.path_params["rid"])))

    # -- results --------------------------------------------------------------------------------
    def result(self, request: Request) -> Response:
        result = self.catalog.result(request.path_params["rid"])
        interactive = list(figures.interactive_views(self.catalog, result.analysis))
        run_ids: dict[tuple[str, str], int] = {}
        for i in result.inputs:
            if (i.project, i.run) not in run_ids:
                try:
                    run_ids[(i.project, i.run)] = self.catalog.get_run(i.run, i.project).id
                except LsdbError:
                    pass
        body = pages.result_page(result, interactive, result.plot_kinds, run_ids, self.token(request))
        return self.html(request, body)

    def result_figure(self, request: Request) -> Response:
        result = self.catalog.result(request.path_params["rid"])
        return _json(figures.result_figure(self.catalog, result, request.path_params["kind"]))

    def result_png(self, request: Request) -> Response:
        result = self.catalog.result(request.path_params["rid"])
        return Response(figures.png_bytes(result, request.path_params["kind"]), media_type="image/png")

    def download(self, request: Request) -> Response:
        rid, fmt = request.path_params["rid"], request.path_params["fmt"]
        if fmt == "hdf5":
            path = self.catalog.artifact_path(rid)
            if path is None:
                raise NotFound(f"result {rid} has no arrays")
            return Response(path.read_bytes(), media_type="application/x-hdf5",
                            headers={"Content-Disposition": f'attachment; filename="result-{rid}.h5"'})
        result = self.catalog.result(rid)
        if fmt == "png":
            kind = request.query_params.get("kind", "default")
            return Response(figures.png_bytes(result, kind), media_type="image/png",
                            headers={"Content-Disposition": f'attachment; filename="result-{rid}-{kind}.png"'})
        with tempfile.TemporaryDirectory(prefix="lsdb-ui-") as tmp:
            target = Path(tmp) / f"result-{rid}.{fmt}"
            if fmt == "html":
                from lsdb.service.ui import export_html

                views = figures.interactive_views(self.catalog, result.analysis)
                figure = next(iter(views.values()))(result.view) if views else None
                path = export_html(result, target, figure)
            elif fmt == "vtk":
                path = result.export("vtk", target.with_suffix(".vts" if _is_grid(result) else ".vtp"))
            else:
                path = result.export(fmt, target)
            media = {"html": "text/html", "json": "application/json", "csv": "text/csv"}.get(fmt,
                                                                                            "application/octet-stream")
            return Response(path.read_bytes(), media_type=media,
                            headers={"Content-Disposition": f'attachment; filename="{path.name}"'})

    # -- compare --------------------------------------------------------------------------------
    def _compare_query(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        return {"runs": [r for r in q.getlist("runs") if r.strip()], "where": q.get("where", "").strip(),
                "analysis": q.get("analysis", "").strip(), "columns": q.get("columns", "").strip(),
                "sort": q.get("sort", "").strip()}

    def _compare(self, query: dict[str, Any], columns: str | None = None) -> Any:
        return self.catalog.compare(query["runs"] or None, where=query["where"] or None,
                                    analysis=query["analysis"] or None,
                                    columns=columns if columns is not None else (query["columns"] or None),
                                    sort=query["sort"] or None)

    def compare(self, request: Request) -> Response:
        query = self._compare_query(request)
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, 1, MAX_PAGE)
        try:
            table, error = self._compare(query), None
        except LsdbError as exc:
            table, error = None, str(exc).splitlines()[0]
        src = pages.url("/api/compare/figure.json", **query) if table is not None and query["analysis"] else None
        body = pages.compare_page(query, table, offset, limit, error, self.analyses(),
                                  src.replace("&amp;", "&") if src else None, self.token(request))
        return self.html(request, body, 200 if error is None else 400)

    def compare_csv(self, request: Request) -> Response:
        table = self._compare(self._compare_query(request))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(table.columns)
        for record in table.to_records():
            writer.writerow([record[c] for c in table.columns])
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="compare.csv"'})

    def compare_figure(self, request: Request) -> Response:
        query = self._compare_query(request)
        if not query["analysis"]:
            raise BadInput("a compare figure needs an analysis")
        ids = [int(r["result_id"]) for r in self._compare(query, "result_id").rows][:figures.MAX_COMPARED]
        return _json(figures.compare_figure(self.catalog, ids))

    # -- jobs -----------------------------------------------------------------------------------
    def job_state(self) -> dict[str, Any]:
        jobs = []
        for record in reversed(self.catalog.jobs(limit=50)):
            progress, message = float(record.progress or 0.0), record.progress_message or ""
            if record.status in ("running", "waiting"):
                progress, message = self.catalog.job(record.id).progress()
            elif record.status == "succeeded":
                progress = 1.0
            jobs.append({"id": record.id, "analysis": record.analysis, "status": record.status, "progress": progress,
                         "message": message, "attempt": record.attempt, "queue": record.queue,
                         "result_id": record.result_id, "error": record.error_type})
        workers = [{"id": w.worker.id, "device": w.worker.device, "status": w.worker.status,
                    "current_job": w.worker.current_job, "alive": w.alive} for w in self.catalog.workers()]
        return {"jobs": jobs, "workers": workers, "writes": self.config.allow_writes}

    def jobs(self, request: Request) -> Response:
        token = self.token(request)
        return self.html(request, pages.jobs_page(self.job_state(), token, self.config.allow_writes))

    def jobs_live(self, request: Request) -> Response:
        return HTMLResponse(pages.jobs_tables(self.job_state(), self.token(request) is not None))

    def jobs_json(self, request: Request) -> Response:
        return _json(self.job_state())

    async def job_action(self, request: Request) -> Response:
        if not self.config.allow_writes:
            return JSONResponse({"error": "read-only: start `lsdb ui --allow-writes` to cancel or retry jobs"}, 403)
        given = request.headers.get(HEADER)
        if given is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            tokens = parse_qs((await request.body()).decode("utf-8", "replace")).get("token", [])
            given = tokens[0] if tokens else None
        if not self.config.token_ok(given):
            return JSONResponse({"error": "a valid write token is required"}, 403)
        jid, action = request.path_params["jid"], request.path_params["action"]
        if action not in ("cancel", "retry"):
            return JSONResponse({"error": f"unknown action '{action}'"}, 404)
        from starlette.concurrency import run_in_threadpool

        verb = self.catalog.cancel_job if action == "cancel" else self.catalog.retry_job
        try:
            record = await run_in_threadpool(verb, jid)
        except LsdbError as exc:
            return self.error(request, exc)
        return JSONResponse({"id": record.id, "status": record.status})

    # -- static files ---------------------------------------------------------------------------
    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        headers = {"Cache-Control": "public, max-age=3600"}
        if name == "plotly.min.js":
            from lsdb.service.ui import plotly_js

            return Response(plotly_js(), media_type="text/javascript", headers=headers)
        if name not in STATIC:
            raise NotFound(f"no static file '{name}'")
        text = resources.files("lsdb.ui").joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name], headers=headers)


def _is_grid(result: Any) -> bool:
    arrays = result.view.arrays
    return "x" in arrays and "y" in arrays
