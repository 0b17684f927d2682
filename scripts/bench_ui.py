"""Benchmark `lsdb ui` (issue #16).

1. Server time of the Runs page over a SQLite catalog of 10,000 runs and 100,000 checkpoints
   (parameters, tags and last metrics on every run), paged (50 rows): the first page, a page
   deep in the table, and a `--where` filter with a sort, through the ASGI app in this process
   (goal < 300 ms).
2. A 101x101 surface's page in headless Chromium (Playwright): from navigation to the 3D view
   drawn and interactive (`performance.mark('lsdb-first-figure')`, set by app.js when
   plotly.newPlot resolved), cold (fresh browser context) and warm (plotly.js cached), then the time
   one drag-to-rotate takes to move the camera (goal: interactive < 2 s). WebGL is Chromium's
   software renderer (SwiftShader) here: no GPU.

    python scripts/bench_ui.py [--runs 10000] [--checkpoints 100000] [--side 101] [--repeat 5]

Prints the machine's load (1-minute load average and CPU count) with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: a 10^4-run catalog at once: no verb of `lsdb.Catalog` does that, so the fill uses the database directly
ARCHS = ("mlp", "resnet", "vgg", "lenet")


def fill(url: str, store: Path, runs: int, checkpoints: int) -> None:
    from sqlalchemy import insert

    from lsdb.catalog.models import BlobRow, CheckpointRow, MetricSummaryRow, RunParamRow, RunRow, RunTagRow
    from lsdb.testing import open_db

    cat = open_db(url, store)
    per_run = max(1, checkpoints // runs)
    digest = "0" * 64
    with cat.db.write() as conn:
        conn.execute(insert(BlobRow), [{"digest": digest, "size": 1, "media_type": "x", "path": "p", "created_at": 0}])
        conn.execute(insert(RunRow), [
            {"id": i + 1, "project": "bench", "name": f"run-{i:05d}", "model_spec": {"name": "mlp", "kwargs": {}},
             "dataset_spec": {"name": "digits", "kwargs": {}}, "loss": "cross_entropy", "status": "complete",
             "created_at": 0} for i in range(runs)])
        params = []
        for i in range(runs):
            params += [{"run_id": i + 1, "key": "lr", "value_num": [0.01, 0.05, 0.1, 0.2][i % 4], "value_str": None},
                       {"run_id": i + 1, "key": "batch_size", "value_num": float(2 ** (5 + i % 3)), "value_str": None},
                       {"run_id": i + 1, "key": "arch", "value_num": None, "value_str": ARCHS[i % len(ARCHS)]}]
        conn.execute(insert(RunParamRow), params)
        conn.execute(insert(RunTagRow), [{"run_id": i + 1, "key": "seed", "value": str(i % 5)} for i in range(runs)])
        conn.execute(insert(MetricSummaryRow), [
            {"run_id": i + 1, "key": key, "last": value, "last_step": 100, "min": value, "max": value, "count": 10}
            for i in range(runs) for key, value in (("test_acc", (i * 7919 % 1000) / 1000), ("train_loss", 1 / (i + 1)))
        ])
        step = 0
        batch: list[dict[str, Any]] = []
        for i in range(runs * per_run):
            step += 1
            batch.append({"run_id": i // per_run + 1, "step": i % per_run, "epoch": None, "label": None,
                          "tensor_digest": f"{i:064x}", "schema_digest": "1" * 64, "n_params": 1000, "n_tensors": 4,
                          "blob_digest": digest, "source_path": None, "produced_by": None, "meta": None,
                          "created_at": 0})
            if len(batch) >= 20_000:
                conn.execute(insert(CheckpointRow), batch)
                batch = []
        if batch:
            conn.execute(insert(CheckpointRow), batch)
    cat.close()


def timed_get(client: Any, path: str, repeat: int) -> tuple[float, int]:
    """Median milliseconds of GET `path` (after one warm-up) and the response's size."""
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(1000 * (time.perf_counter() - t0))
        assert r.status_code == 200
    return statistics.median(times), len(r.content)


def bench_runs_page(home: Path, runs: int, checkpoints: int, repeat: int) -> None:
    from starlette.testclient import TestClient

    import lsdb
    from lsdb.service.ui import make_app

    url, store = f"sqlite:///{home / 'runs.sqlite'}", home / "store"
    t0 = time.perf_counter()
    fill(url, store, runs, checkpoints)
    print(f"filled {runs} runs, {checkpoints} checkpoints in {time.perf_counter() - t0:.1f} s")
    with lsdb.open_catalog(url, store) as cat, TestClient(make_app(cat)) as client:
        for label, path in (
            ("runs page 1 (50 rows)", "/runs"),
            ("runs page at offset 9950", f"/runs?offset={max(0, runs - 50)}"),
            ("--where lr > 0.05 AND tag.seed IN (1, 2), sorted", "/runs?where=lr+%3E+0.05+AND+tag.seed+IN+(1%2C+2)"
                                                                  "&sort=-metric.test_acc"),
            ("run page (10 checkpoints)", "/runs/1"),
        ):
            ms, size = timed_get(client, path, repeat)
            print(f"  {label:55s} {ms:8.1f} ms  ({size / 1024:.0f} KiB)")


def bench_surface_page(home: Path, side: int, repeat: int) -> None:
    import uvicorn

    import lsdb
    from lsdb.service.ui import make_app

    url, store = f"sqlite:///{home / 'surface.sqlite'}", home / "store-s"
    with lsdb.open_catalog(url, store) as cat:
        t0 = time.perf_counter()
        cat.train("r", model="mlp:widths=[8]", dataset="digits", epochs=1)
        result = cat.run("surface", "r:last", xnum=side, ynum=side, subset=256, device="cpu")
        print(f"computed a {side}x{side} surface in {time.perf_counter() - t0:.1f} s")
        server = uvicorn.Server(uvicorn.Config(make_app(cat), host="127.0.0.1", port=_free_port(),
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{server.config.port}"
        try:
            cold, warm, rotate = _browser_times(f"{base}/results/{result.id}", repeat)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    print(f"  surface page, navigation -> 3D drawn, cold (fresh context)   {statistics.median(cold):8.0f} ms "
          f"(runs: {', '.join(f'{t:.0f}' for t in cold)})")
    print(f"  surface page, navigation -> 3D drawn, warm (plotly cached)   {statistics.median(warm):8.0f} ms "
          f"(runs: {', '.join(f'{t:.0f}' for t in warm)})")
    print(f"  one drag-to-rotate until the camera moved                 {statistics.median(rotate):8.0f} ms")


def _browser_times(page_url: str, repeat: int) -> tuple[list[float], list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    from tests.ui.conftest import CHROMIUM_ARGS, chromium_path

    exe = chromium_path()
    if exe is None:
        raise SystemExit("bench_ui: the browser part needs chromium (.ci/install-browser)")
    drawn = "() => performance.getEntriesByName('lsdb-first-figure')[0].startTime"
    eye = "() => JSON.stringify(document.querySelector('.lsdb-figure')._fullLayout.scene._scene.getCamera().eye)"
    cold: list[float] = []
    warm: list[float] = []
    rotate: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            for bucket in (cold, warm):
                page.goto(page_url)
                page.wait_for_selector("body[data-figures='rendered']", timeout=60_000)
                bucket.append(float(page.evaluate(drawn)))
            before = page.evaluate(eye)
            box = page.locator(".lsdb-figure").first.bounding_box()
            assert box is not None
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            t0 = time.perf_counter()
            page.mouse.move(cx, cy)
            page.mouse.down()
            page.mouse.move(cx + 120, cy + 30, steps=2)
            page.mouse.up()
            page.wait_for_function(f"(b) => ({eye[6:]}) !== b", arg=before, timeout=10_000)
            rotate.append(1000 * (time.perf_counter() - t0))
            context.close()
        browser.close()
    return cold, warm, rotate


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--checkpoints", type=int, default=100_000)
    ap.add_argument("--side", type=int, default=101)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min) at start")
    home = Path(tempfile.mkdtemp(prefix="lsdb-bench-ui-"))
    try:
        bench_runs_page(home, args.runs, args.checkpoints, args.repeat)
        if not args.skip_browser:
            bench_surface_page(home, args.side, min(args.repeat, 3))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
