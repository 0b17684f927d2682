"""`lsdb ui`: a local web page over the catalog, a client of the service layer like the CLI.

`create_app(catalog, ...)` returns the Starlette application (`lsdb.ui.app`); `lsdb.service.ui.serve_ui`
runs it under uvicorn. Pages are rendered on the server (`lsdb.ui.pages`, every user value
escaped); the figures are plotly JSON (`lsdb.ui.figures`, `lsdb.ui.views`) drawn by plotly.js served
from the ``plotly`` package, so the page works offline. Read-only unless started with
``--allow-writes`` (`lsdb.ui.security`).
"""

from lsdb.ui.app import create_app
from lsdb.ui.security import UiConfig

__all__ = ["UiConfig", "create_app"]
