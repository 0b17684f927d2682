"""Real-browser tests: Debian's Chromium (headless) driven by Playwright against a live `lsdb ui`.

Skipped, with the reason, when Playwright or Chromium is missing (`.ci/install-browser`). Every
test saves screenshots under the artifact folder (`conftest.artifacts_dir`); with
``LSDB_UI_DOC_FIGURES=1`` the README's screenshots are refreshed in ``docs/figures/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import XSS, LiveServer, artifacts_dir

pytestmark = pytest.mark.slow
DOC_FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"


def shot(page: Any, name: str) -> None:
    """Save a screenshot to the artifacts (and to docs/figures when asked)."""
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=False)
    if os.environ.get("LSDB_UI_DOC_FIGURES") == "1":
        DOC_FIGURES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_FIGURES / f"ui_{name}.png"), full_page=False)


def wait_figures(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_selector("body[data-figures='rendered']", timeout=timeout_ms)


def test_runs_page_filter_and_compare(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/runs")
    assert page.locator("table.runs tbody tr").count() == 2
    shot(page, "runs")
    page.fill("input[name=where]", "lr = 0.05 AND tag.seed IN (2)")
    page.click("form.filter button[type=submit]")
    page.wait_for_load_state()
    names = page.locator("table.runs tbody tr td:nth-child(2)").all_inner_texts()
    assert names == ["s"]
    page.fill("input[name=where]", "lr >")
    page.click("form.filter button[type=submit]")
    assert page.locator("p.error").count() == 1

    page.goto(f"{live_server.url}/runs")
    for box in page.locator("table.runs input[type=checkbox]").all():
        box.check()
    page.select_option("select[name=analysis]", "interpolate")
    page.click("#compare-selected")
    page.wait_for_url("**/compare?**")
    wait_figures(page)
    assert page.locator("table.compare tbody tr").count() == 2
    assert page.locator(".lsdb-figure .scatterlayer .trace").count() == 2  # the two curves overlaid
    shot(page, "compare")


def test_surface_result_renders_in_webgl_and_rotates(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/results/{live_server.ids['surface']}")
    wait_figures(page)
    figure = page.locator(".lsdb-figure").first
    canvas = figure.locator("canvas").first
    assert canvas.count() == 1
    assert page.evaluate("""() => {
        const c = document.querySelector('.lsdb-figure canvas');
        return !!(c && (c.getContext('webgl') || c.getContext('experimental-webgl')));
    }""")
    eye = "() => JSON.stringify(document.querySelector('.lsdb-figure')._fullLayout.scene._scene.getCamera().eye)"
    before = page.evaluate(eye)
    box = figure.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(cx + 20 * k, cy + 6 * k)
    page.mouse.up()
    page.wait_for_timeout(300)
    assert page.evaluate(eye) != before, "dragging did not rotate the camera"
    assert page.locator(".lsdb-figure").nth(1).locator(".contourlayer, .heatmaplayer, .imagelayer").count() >= 1
    shot(page, "surface")


def test_job_progress_reaches_done(page: Any, live_server: LiveServer) -> None:
    job = live_server.catalog.submit("surface", "r:last", xnum=9, ynum=9)
    page.goto(f"{live_server.url}/jobs")
    row = page.locator(f"table.jobs tbody tr:has(td:first-child:text-is('{job.id}'))")
    assert row.locator(".status").inner_text() == "queued"
    assert page.locator(f"button[data-job='{job.id}'][data-action='cancel']").count() == 1
    worker = subprocess.Popen(
        [sys.executable, "-c", "from lsdb.cli.app import main; main()", "--db", live_server.db, "--store",
         str(live_server.store), "worker", "--device", "cpu", "--once"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    seen: set[str] = set()
    percents: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            # the page updates itself (polling): read it without reloading
            row = page.locator(f"table.jobs tbody tr:has(td:first-child:text-is('{job.id}'))")
            status = row.locator(".status").inner_text()
            pct = row.locator(".pct").inner_text()
            seen.add(f"{status} {pct}")
            percents.append(int(pct.rstrip("%")))
            if status == "succeeded":
                break
            if status in ("failed", "cancelled"):
                pytest.fail(f"job {status}: {live_server.catalog.job(job.id).record.error_message}")
            page.wait_for_timeout(250)
        else:
            pytest.fail(f"job did not finish; seen {sorted(seen)}")
        assert row.locator(".pct").inner_text() == "100%"
        assert row.locator("a").get_attribute("href") == f"/results/{live_server.catalog.job(job.id).record.result_id}"
        assert any(s.startswith("queued") for s in seen) and "succeeded 100%" in seen
        assert percents == sorted(percents), percents  # progress only advances
        shot(page, "jobs")
    finally:
        worker.wait(timeout=60)


def test_cancel_button_cancels_a_queued_job(page: Any, live_server: LiveServer) -> None:
    job = live_server.catalog.submit("surface", "r:last", xnum=7, ynum=7)
    page.goto(f"{live_server.url}/jobs")
    page.click(f"button[data-job='{job.id}'][data-action='cancel']")
    page.wait_for_selector(f"button[data-job='{job.id}'][data-action='retry']", timeout=10_000)
    assert live_server.catalog.job(job.id).status == "cancelled"


def test_xss_tag_shows_as_text(page: Any, live_server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    run = live_server.catalog.get_run("r")
    for path in ("/runs", f"/runs/{run.id}", "/compare?columns=run,tag.note"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        assert page.get_by_text(XSS, exact=False).count() >= 1, path
    page.goto(f"{live_server.url}/runs?where=" + "tag.note%20%3D%20%27%3Cscript%3Ealert(1)%3C%2Fscript%3E%27")
    assert page.input_value("input[name=where]") == f"tag.note = '{XSS}'"
    assert dialogs == []
    shot(page, "xss")


def test_html_export_renders_offline(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    path = live_server.catalog.result(live_server.ids["surface"]).export("html", tmp_path / "surface.html")
    requests: list[str] = []

    def only_the_file(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-rendered='1']", timeout=30_000)
    assert page.locator("#figure canvas").count() >= 1
    assert all(u.startswith("file:") for u in requests), requests
    shot(page, "export_html")
