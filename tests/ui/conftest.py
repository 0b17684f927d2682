"""Fixtures of the UI tests: real catalogs with real results, the ASGI test client, a live server on a
free port, and a headless Chromium driven by Playwright (skipped with the reason when missing).

Screenshots go to ``$LSDB_TEST_ARTIFACTS`` or ``tests/ui/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*")

XSS = "<script>alert(1)</script>"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]


def artifacts_dir() -> Path:
    """Where screenshots are saved (created)."""
    path = Path(os.environ.get("LSDB_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def fill_catalog(cat: Any) -> dict[str, int]:
    """Two trained runs (one tagged with an XSS payload), a 2D surface, a trajectory and an interpolation."""
    cat.train("r", model="mlp:widths=[16]", dataset="digits", epochs=2, tags={"note": XSS, "seed": "1"})
    cat.train("s", model="mlp:widths=[8]", dataset="digits", epochs=2, lr=0.05, tags={"seed": "2"})
    surface = cat.run("surface", "r:last", xnum=11, ynum=11, xmin=-0.5, xmax=0.5, ymin=-0.5, ymax=0.5, device="cpu")
    surface_s = cat.run("surface", "s:last", xnum=5, ynum=5, device="cpu")
    interp = cat.run("interpolate", "r:first", "r:last", device="cpu")
    interp_s = cat.run("interpolate", "s:first", "s:last", device="cpu")
    return {"surface": surface.id, "surface_s": surface_s.id, "interpolate": interp.id, "interpolate_s": interp_s.id}


@dataclass
class Built:
    """A filled SQLite catalog on disk (made once per session) and its result ids."""

    url: str
    store: Path
    ids: dict[str, int]


@pytest.fixture(scope="session")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Built:
    import lsdb

    root = tmp_path_factory.mktemp("ui-template")
    url, store = f"sqlite:///{root / 'catalog.sqlite'}", root / "store"
    cat = lsdb.open_catalog(url, store)
    try:
        ids = fill_catalog(cat)
    finally:
        cat.close()
    return Built(url, store, ids)


@pytest.fixture
def built(built_template: Built, tmp_path: Path) -> Built:
    """A private copy of the filled catalog (tests may write to it)."""
    src = Path(built_template.url.split(":///", 1)[1])
    shutil.copy(src, tmp_path / "catalog.sqlite")
    shutil.copytree(built_template.store, tmp_path / "store")
    return Built(f"sqlite:///{tmp_path / 'catalog.sqlite'}", tmp_path / "store", built_template.ids)


@pytest.fixture
def ui_catalog(built: Built) -> Iterator[Any]:
    import lsdb

    cat = lsdb.open_catalog(built.url, built.store)
    yield cat
    cat.close()


@pytest.fixture
def client(ui_catalog: Any) -> Iterator[Any]:
    """A test client of the read-only UI."""
    from starlette.testclient import TestClient

    from lsdb.service.ui import make_app

    with TestClient(make_app(ui_catalog)) as c:
        yield c


# -- a live server and a browser --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    catalog: Any
    ids: dict[str, int]
    db: str
    store: Path


@pytest.fixture
def live_server(built: Built, ui_catalog: Any) -> Iterator[LiveServer]:
    """The UI (with writes allowed, bound to localhost) served by uvicorn in a thread."""
    uvicorn = pytest.importorskip("uvicorn")
    from lsdb.service.ui import make_app

    port = free_port()
    app = make_app(ui_catalog, allow_writes=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", ui_catalog, built.ids, built.url, built.store)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium_path() -> str | None:
    return os.environ.get("LSDB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; skipped (with why) when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install playwright")
    exe = chromium_path()
    if exe is None:
        pytest.skip("browser tests need Chromium: apt-get install chromium (or .ci/install-browser)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()
