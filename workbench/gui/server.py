"""`workbench serve`: the GUI on a local Panel/Bokeh server, one independent app per browser session.

Everything the page loads (Bokeh, Panel, plotly.js, the builder's ESM) comes from this server:
nothing is fetched from a CDN or a font service.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Resources from the local server, never a CDN (the default, stated so an environment cannot flip it).
os.environ.pop("BOKEH_RESOURCES", None)

import panel as pn  # noqa: E402

from ..store import RunStore  # noqa: E402
from .share import MAX_REQUEST_HEADER_BYTES  # noqa: E402

SESSION_CHECK_MS = 2_000  # how often closed tabs are looked for
SESSION_LIFETIME_MS = 10_000  # a closed tab's session (and its training) ends this long after it closed


def _warm_imports() -> None:
    """Import the heavy engine parts and build one page's models once at start-up, so that the first page
    opens as quickly as the next ones (the first model of each kind costs far more than the rest)."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from ..engine.executors import cudaq_runtime  # noqa: F401  (CUDA-Q: target availability)
    from .app import WorkbenchApp

    app = WorkbenchApp(store=False)  # every tab filled: datasets, forms, charts
    doc = Document()
    with set_curdoc(doc):
        pn.Column(app.sidebar, app.tabs).get_root(doc)
    app.shutdown()


def make_server(port: int = 5006, address: str = "localhost", *, show: bool = False, store: str | Path | None = None,
                **kwargs):
    """A started-but-not-running Bokeh server serving the workbench at `/` (call .io_loop.start())."""
    from .app import create_app

    _warm_imports()
    run_store = RunStore(store) if store is not None else None
    origins = kwargs.pop("websocket_origin", None) or [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    def workbench_page():  # called once per browser session (pn.serve wants a plain function)
        return create_app(run_store)

    kwargs.setdefault("http_server_kwargs", {"max_header_size": MAX_REQUEST_HEADER_BYTES})  # long links: see share.py
    kwargs.setdefault("check_unused_sessions_milliseconds", SESSION_CHECK_MS)
    kwargs.setdefault("unused_session_lifetime_milliseconds", SESSION_LIFETIME_MS)
    server = pn.serve({"/": workbench_page}, port=port, address=address, show=False, start=False,
                      title="Hybrid Quantum Workbench", websocket_origin=origins, verbose=False, **kwargs)
    if show:
        server.io_loop.add_callback(server.show, "/")
    return server


def serve(port: int = 5006, address: str = "localhost", show: bool = False, store: str | Path | None = None) -> None:
    """Serve the workbench until interrupted, printing the address to open."""
    server = make_server(port, address, show=show, store=store)
    server.start()
    actual = server.port or port
    print(f"Hybrid Quantum Workbench: http://{address}:{actual}/  (Ctrl+C to stop)", flush=True)
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Hybrid Quantum Workbench GUI.")
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--address", default="localhost")
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--store", default=None, help="Run store file (default: $WORKBENCH_STORE or the user's).")
    args = parser.parse_args(argv)
    serve(port=args.port, address=args.address, show=args.show, store=args.store)


if __name__ == "__main__":
    main(sys.argv[1:])
