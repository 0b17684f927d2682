"""HTTP tests of every UI route through Starlette's test client, on real catalogs with real results."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import XSS, Built, fill_catalog

pytest.importorskip("starlette")
pytest.importorskip("plotly")


def _ok(client: Any, path: str, kind: str = "text/html") -> Any:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(kind), (path, r.headers["content-type"])
    return r


def test_every_route_on_both_backends(db_url: str, store_root: Path) -> None:
    """Every page and JSON route answers on SQLite and PostgreSQL over a freshly filled catalog."""
    from starlette.testclient import TestClient

    import lsdb
    from lsdb.service.ui import make_app

    cat = lsdb.open_catalog(db_url, store_root)
    try:
        ids = fill_catalog(cat)
        run = cat.get_run("r")
        with TestClient(make_app(cat)) as client:
            assert client.get("/", follow_redirects=False).headers["location"] == "/runs"
            assert "r</a>" in _ok(client, "/runs").text
            _ok(client, "/runs?where=lr%20%3E%200.01&sort=-lr")
            _ok(client, f"/runs/{run.id}")
            _ok(client, "/runs/s")
            _ok(client, f"/results/{ids['surface']}")
            _ok(client, f"/results/{ids['interpolate']}")
            for kind in ("default", "contour"):
                fig = _ok(client, f"/results/{ids['surface']}/figure/{kind}.json", "application/json").json()
                assert fig["data"] and "layout" in fig
            _ok(client, f"/results/{ids['surface']}/plot/default.png", "image/png")
            _ok(client, f"/api/runs/{run.id}/metrics.json", "application/json")
            _ok(client, f"/compare?runs={run.id}&runs=s")
            _ok(client, "/compare?analysis=surface")
            _ok(client, "/compare.csv?analysis=interpolate", "text/csv")
            _ok(client, "/api/compare/figure.json?analysis=surface", "application/json")
            _ok(client, "/jobs")
            _ok(client, "/jobs/live")
            _ok(client, "/api/jobs", "application/json")
            _ok(client, "/static/app.js", "text/javascript")
            _ok(client, "/static/style.css", "text/css")
            _ok(client, "/static/plotly.min.js", "text/javascript")
            _ok(client, "/healthz", "text/plain")
            for fmt in ("hdf5", "npz", "csv", "json", "vtk", "html", "png"):
                r = client.get(f"/results/{ids['surface']}/download/{fmt}")
                assert r.status_code == 200 and r.content, fmt
    finally:
        cat.close()


def test_runs_page_shows_runs_with_specs_params_and_metrics(client: Any) -> None:
    text = _ok(client, "/runs").text
    assert "mlp:widths=[16]" in text and "digits" in text
    assert 'name="runs"' in text  # checkboxes to compare
    assert re.search(r"rows 1–2 of <span class=\"total\">2</span>", text)


def test_where_filters_and_errors_inline(client: Any) -> None:
    text = _ok(client, "/runs?where=lr%20%3D%200.05").text
    assert ">s</a>" in text and ">r</a>" not in text
    bad = client.get("/runs?where=lr%20%3E")
    assert bad.status_code == 400
    errors = re.findall(r'<p class="error" role="alert">(.*?)</p>', bad.text)
    assert len(errors) == 1 and "\n" not in errors[0]


def test_runs_are_paged(client: Any) -> None:
    text = _ok(client, "/runs?limit=1").text
    assert text.count('name="runs"') == 1 and 'rel="next"' in text
    second = _ok(client, "/runs?limit=1&offset=1").text
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_user_input_is_escaped(client: Any, ui_catalog: Any) -> None:
    """A tag `<script>alert(1)</script>` shows as text on every page that shows tags or parameters."""
    run = ui_catalog.get_run("r")
    for path in ("/runs", f"/runs/{run.id}", "/compare?columns=run,tag.note"):
        text = _ok(client, path).text
        assert XSS not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    where = _ok(client, "/runs?where=" + "tag.note%20%3D%20%27%3Cscript%3Ealert(1)%3C%2Fscript%3E%27").text
    assert XSS not in where and ">r</a>" in where  # the filter itself is bound, and echoed escaped


def test_security_headers_forbid_inline_script(client: Any) -> None:
    csp = _ok(client, "/runs").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]


def test_run_page_lists_checkpoints_results_tags(client: Any, ui_catalog: Any, built: Built) -> None:
    run = ui_catalog.get_run("r")
    text = _ok(client, f"/runs/{run.id}").text
    assert f'href="/results/{built.ids["surface"]}"' in text
    assert "checkpoints" in text and "seed" in text
    fig = _ok(client, f"/api/runs/{run.id}/metrics.json", "application/json").json()
    assert {t["name"] for t in fig["data"]}
    assert client.get("/runs/nope").status_code == 404


def test_result_page_has_views_inputs_and_downloads(client: Any, built: Built, ui_catalog: Any) -> None:
    text = _ok(client, f"/results/{built.ids['surface']}").text
    assert f'data-src="/results/{built.ids["surface"]}/figure/default.json"' in text
    run = ui_catalog.get_run("r")
    assert f'href="/runs/{run.id}"' in text  # inputs are linked
    for fmt in ("hdf5", "npz", "csv", "json", "vtk", "html", "png"):
        assert f"/download/{fmt}" in text
    fig = client.get(f"/results/{built.ids['surface']}/figure/default.json").json()
    assert fig["data"][0]["type"] == "surface" and len(fig["data"][0]["z"]) == 11
    contour = client.get(f"/results/{built.ids['surface']}/figure/contour.json").json()
    assert contour["data"][0]["type"] == "contour"
    curves = client.get(f"/results/{built.ids['interpolate']}/figure/default.json").json()
    names = {t["name"] for t in curves["data"]}
    assert {"train loss", "test loss", "train error", "test error"} <= names
    assert client.get(f"/results/{built.ids['surface']}/figure/nope.json").status_code == 400
    assert client.get("/results/9999").status_code == 404


def test_third_party_analysis_falls_back_to_png(client: Any, built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsdb.ui import views

    monkeypatch.setattr(views, "BUILTIN", tuple(v for v in views.BUILTIN if v[0] != "surface"))
    text = _ok(client, f"/results/{built.ids['surface']}").text
    assert f'src="/results/{built.ids["surface"]}/plot/default.png"' in text and "lsdb-figure" not in text


def test_plugin_interactive_renderer_wins(ui_catalog: Any, built: Built) -> None:
    """A view registered through the hook replaces the built-in one of the same name."""
    from starlette.testclient import TestClient

    from lsdb.service.ui import make_app

    ui_catalog._registries.interactive.register("surface", lambda v: {"data": [], "layout": {"title": "mine"}},
                                                name="default", plugin="test")
    try:
        with TestClient(make_app(ui_catalog)) as c:
            fig = c.get(f"/results/{built.ids['surface']}/figure/default.json").json()
        assert fig["layout"]["title"] == "mine"
    finally:
        ui_catalog._registries.interactive._entries.pop("surface/default")


def test_compare_table_csv_and_figures(client: Any, built: Built) -> None:
    text = _ok(client, "/compare?analysis=interpolate").text
    assert "result_id" in text and "/api/compare/figure.json?analysis=interpolate" in text
    rows = list(csv.reader(io.StringIO(_ok(client, "/compare.csv?analysis=interpolate", "text/csv").text)))
    assert rows[0][:2] == ["run", "project"] and len(rows) == 3
    overlay = client.get("/api/compare/figure.json?analysis=interpolate").json()
    assert len(overlay["data"]) == 2 and all(t["type"] == "scatter" for t in overlay["data"])
    side = client.get("/api/compare/figure.json?analysis=surface").json()
    assert [t["type"] for t in side["data"]] == ["heatmap", "heatmap"]
    assert side["layout"]["coloraxis"]["cmin"] <= side["layout"]["coloraxis"]["cmax"]  # one colour scale
    bad = client.get("/compare?where=lr%20%3E")
    assert bad.status_code == 400 and 'class="error"' in bad.text


def test_jobs_show_progress_and_writes_are_refused_when_read_only(client: Any, ui_catalog: Any) -> None:
    job = ui_catalog.submit("surface", "r:last", xnum=3, ynum=3)
    state = client.get("/api/jobs").json()
    assert [j["id"] for j in state["jobs"]] == [job.id] and state["jobs"][0]["status"] == "queued"
    assert f"<td>{job.id}</td>" in _ok(client, "/jobs/live").text
    assert "--allow-writes" in _ok(client, "/jobs").text
    r = client.post(f"/jobs/{job.id}/cancel")
    assert r.status_code == 403 and ui_catalog.job(job.id).status == "queued"


def test_writes_need_the_token(ui_catalog: Any) -> None:
    from starlette.testclient import TestClient

    from lsdb.service.ui import make_app

    job = ui_catalog.submit("surface", "r:last", xnum=3, ynum=3)
    with TestClient(make_app(ui_catalog, allow_writes=True, token="sesame")) as c:
        page = c.get("/jobs").text
        assert 'content="sesame"' in page and 'data-action="cancel"' in page  # local: the page carries it
        assert c.post(f"/jobs/{job.id}/cancel").status_code == 403
        assert c.post(f"/jobs/{job.id}/cancel", headers={"X-LSDB-Token": "wrong"}).status_code == 403
        r = c.post(f"/jobs/{job.id}/cancel", headers={"X-LSDB-Token": "sesame"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = c.post(f"/jobs/{job.id}/retry", data={"token": "sesame"})
        assert r.status_code == 200 and r.json()["status"] == "queued"


def test_beyond_localhost_pages_carry_the_token_only_after_it_was_presented(ui_catalog: Any) -> None:
    from starlette.testclient import TestClient

    from lsdb.service.ui import make_app

    with TestClient(make_app(ui_catalog, host="0.0.0.0", allow_writes=True, token="sesame")) as c:
        assert "sesame" not in c.get("/jobs").text
        assert "sesame" not in c.get("/jobs?token=wrong").text
        c.get("/runs?token=sesame")  # sets the HttpOnly cookie
        assert 'content="sesame"' in c.get("/jobs").text


def test_ui_command_is_registered_and_thin() -> None:
    """`lsdb ui --help` works once `ui_cmds.register(app)` is called; the CLI module imports no web stack."""
    import subprocess
    import sys

    code = ("import sys; from lsdb.cli.app import app; import lsdb.cli.ui_cmds as u; u.register(app); "
            "from typer.testing import CliRunner; r = CliRunner().invoke(app, ['ui', '--help']); print(r.output); "
            "print('LOADED', [m for m in ('starlette', 'uvicorn', 'plotly', 'lsdb.ui') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "--allow-writes" in out.stdout and "--port" in out.stdout, out.stderr
    assert "LOADED []" in out.stdout


def test_runs_page_pages_in_compare_order(ui_catalog: Any) -> None:
    """The SQL-paged listing (no filter) and the compare-paged one (a filter) agree on order and totals."""
    plain = ui_catalog.runs_page(limit=1)
    assert plain.total == 2 and [r.name for r in plain.runs] == ["r"]
    assert [r.name for r in ui_catalog.runs_page(offset=1, limit=1).runs] == ["s"]
    filtered = ui_catalog.runs_page("run_id > 0", limit=5)
    assert filtered.total == 2 and [r.name for r in filtered.runs] == ["r", "s"]
    assert [r.name for r in ui_catalog.runs_page(sort="-lr").runs] == ["r", "s"]
    with pytest.raises(Exception, match="offset"):
        ui_catalog.runs_page(offset=-1)


def test_sort_and_columns_are_echoed_escaped(client: Any) -> None:
    r = client.get("/runs?sort=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert XSS not in r.text and "&lt;script&gt;" in r.text
    r = client.get("/compare?columns=%22%3E%3Cimg%20src%3Dx%3E")
    assert "<img src=x>" not in r.text
