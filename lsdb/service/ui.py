"""`lsdb ui` from the service layer: run the web UI (`lsdb.ui`, imported lazily) over a catalog.

The CLI calls `serve_ui`; tests and scripts build the application with `make_app` and drive it
through an ASGI client. `export_html` and `plotly_js` are what the UI needs from the exporters.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsdb.errors import BadInput

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from lsdb.service.catalog import Catalog
    from lsdb.service.results import Result

UI_EXTRA = "the web UI needs its extra: pip install 'lsdb[ui]' (starlette, uvicorn, plotly)"


def make_app(catalog: Catalog, *, host: str = "127.0.0.1", allow_writes: bool = False,
             token: str | None = None, page_size: int = 50) -> Starlette:
    """The UI's ASGI application over `catalog` (which the caller keeps open and closes)."""
    try:
        from lsdb.ui import UiConfig, create_app
    except ModuleNotFoundError as exc:
        raise BadInput(f"{UI_EXTRA} ({exc.name} is missing)") from None
    config = UiConfig.for_host(host, allow_writes, token)
    return create_app(catalog, UiConfig(config.allow_writes, config.local, config.token, page_size))


def serve_ui(db: str | None = None, store: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1",
             port: int = 8765, allow_writes: bool = False, log_level: str = "warning") -> None:
    """Serve the UI over the catalog `db` (and `store`) until interrupted; prints the address (and the token)."""
    from lsdb.service.catalog import open_catalog
    from lsdb.ui.security import LOCAL_HOSTS, new_token

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise BadInput(UI_EXTRA) from None
    token = os.environ.get("LSDB_UI_TOKEN") or new_token()
    catalog = open_catalog(db, store)
    try:
        app = make_app(catalog, host=host, allow_writes=allow_writes, token=token)
        shown = f"[{host}]" if ":" in host else host
        sys.stderr.write(f"lsdb ui: http://{shown}:{port}/  ({'read-write' if allow_writes else 'read-only'})\n")
        if allow_writes and host not in LOCAL_HOSTS:
            sys.stderr.write(f"write token: {token}  (open http://{shown}:{port}/runs?token={token} once)\n")
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        catalog.close()


def export_html(result: Result, path: str | os.PathLike[str] | None = None,
                figure: dict[str, Any] | None = None) -> Path:
    """A result as one self-contained interactive page drawing `figure` (default: a generic figure)."""
    from lsdb.analyses.exporting import export_view

    return export_view(result.view, "html", Path(path) if path is not None else None, figure=figure)


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js from the ``plotly`` package (read once)."""
    from lsdb.analyses.exporting import plotly_js as read

    return read()
