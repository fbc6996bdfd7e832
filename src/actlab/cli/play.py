"""``actlab play``: the browser playground (a local web server; the page trains a net live)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape

from actlab.cli.app import app, console, fail


@app.command("play")
def play(
    setup: Annotated[Optional[str], typer.Argument(
        help="A setup to open, as in a shared link's query: 'activation=sigmoid&depth=10'.")] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL, do not open a browser.")] = False,
) -> None:
    """Build a network in the browser and watch it train, live: loss, decision surface, gradients
    per layer against the theory's line, histograms, dead units and the probe's findings.

    Example: `actlab play`, or `actlab play 'activation=sigmoid&depth=10' --no-browser`.
    """
    if not 0 <= port <= 65535:
        raise fail(f"--port must be in [0, 65535] (0: a free port), got {port}")
    query = ""
    if setup:
        from actlab.play.config import PlayError, parse_query

        query = setup.split("?", 1)[-1]
        try:
            parse_query(query)
        except PlayError as e:
            raise fail(f"setup: {e}") from None
    try:
        from actlab.play.server import serve
    except ImportError as e:  # pragma: no cover - the server stack is a core dependency
        raise fail(f"the playground needs starlette and uvicorn ({e}); pip install starlette uvicorn websockets")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/] binding {escape(host)}: anyone who can reach it can run training on this "
                      "machine")

    def ready(url: str) -> None:
        console.print(f"actlab play at [bold]{url}[/]  (Ctrl+C stops it)", highlight=False)

    try:
        serve(host, port, open_browser=not no_browser, query=query, on_ready=ready)
    except OSError as e:
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        pass

