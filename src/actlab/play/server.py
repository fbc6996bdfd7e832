"""The playground's web server: Starlette routes and one WebSocket per page, served by uvicorn.

Why Starlette + uvicorn: the page needs a push channel (frames at 10-20 per second) and a few
static files, nothing more.  Starlette is a small, well-kept ASGI toolkit with WebSockets and
static files built in; uvicorn is the reference ASGI server.  Bokeh or Panel would bring their
own widget model and a large JavaScript bundle for a page that draws on a few ``<canvas>``es.

Per page: up to two :class:`~actlab.play.session.Session` (``"a"`` and, when comparing, ``"b"``),
each training in its own thread; a sender task pushes a session's newest frame whenever it has
a new one (a slow page skips frames rather than queueing them).  Every message from the page is
checked by :func:`actlab.play.protocol.parse_message`; a bad one is answered with
``{"type": "error", "message": ...}`` and the connection stays open.

Start-up (time to the first frame, goal < 3 s): this module imports no torch.  The server binds
and prints the URL at once while :class:`Opening` imports torch and the library and builds the
opening setup in a background thread; the page and its static files are served meanwhile, what
needs the library (``/api/controls``, the WebSocket's messages) waits for it without blocking the
event loop, and the first page that asks for the opening setup gets the net already built, its
first frame drawn.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:  # pragma: no cover
    from actlab.play.config import PlayConfig
    from actlab.play.protocol import Message
    from actlab.play.session import Session

STATIC = Path(__file__).parent / "static"


@lru_cache(maxsize=64)
def _activation_sheet(name: str) -> str:
    from actlab.play.session import activation_sheet

    return json.dumps({"type": "activation", **activation_sheet(name)})


@lru_cache(maxsize=4096)
def _theory(activation: str, sigma_w2: float, sigma_b2: float, depth: int) -> str:
    from actlab.play.session import theory_sheet

    return json.dumps({"type": "theory", "activation": activation, **theory_sheet(activation, sigma_w2, sigma_b2, depth)})


class _Page:
    """One connected page: its runs, and what was last sent of each."""

    def __init__(self, ws: WebSocket, frame_interval: float, live: Any = None, opening: "Opening | None" = None) -> None:
        self.ws = ws
        self.live = live
        self.opening = opening
        self.frame_interval = frame_interval
        self.sessions: dict[str, Any] = {}
        self.sent: dict[str, int] = {}
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.frames_sent = 0

    def _poke(self) -> None:  # called from training threads
        self.loop.call_soon_threadsafe(self.wake.set)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(obj))

    async def error(self, message: str, request: str | None = None) -> None:
        await self.send({"type": "error", "message": message, "request": request})

    async def sender(self) -> None:
        """Push each run's newest frame when there is one (never a backlog)."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            for run, s in list(self.sessions.items()):
                seq = s.seq
                if self.sent.get(run) != seq:
                    self.sent[run] = seq
                    # Encoding a frame takes a few ms of Python: off the event loop, so the page's
                    # messages are answered meanwhile (the GIL is shared with training either way).
                    text = await asyncio.to_thread(json.dumps, {"type": "frame", "run": run, **s.frame})
                    await self.ws.send_text(text)
                    self.frames_sent += 1

    async def configure(self, run: str, config: PlayConfig, *, fresh: bool = False) -> None:
        from actlab.play.session import Session

        old = self.sessions.pop(run, None)
        self.sent.pop(run, None)
        if old is not None:
            await asyncio.to_thread(old.close)
        s = None if fresh or self.opening is None else self.opening.take(config, self.frame_interval)
        if s is not None:
            s.on_frame = self._poke
        else:
            try:
                s = await asyncio.to_thread(Session, config, frame_interval=self.frame_interval, on_frame=self._poke)
            except (ValueError, FileNotFoundError) as e:  # the lab's own checks (data, init) name the problem
                await self.error(f"cannot build this setup: {e}", "configure")
                return
        intro = await asyncio.to_thread(s.intro)
        await self.send({"type": "ready", "run": run, **intro})
        self.sessions[run] = s
        self._poke()

    async def handle(self, m: Message) -> None:
        if m.type == "configure":
            assert m.config is not None
            if self.sessions.get(m.run) is self.live and self.live is not None:
                self.sessions.pop(m.run)
            await self.configure(m.run, m.config)
        elif m.type == "watch":
            if self.live is None:
                await self.error("no live feed here: start one from Python with actlab.play.watch(probe)", "watch")
                return
            self.live.on_frame = self._poke
            await self.send({"type": "ready", "run": "a", **self.live.intro()})
            self.sessions["a"] = self.live
            self.sent.pop("a", None)
            self._poke()
        elif m.type == "theory":
            await self.ws.send_text(await asyncio.to_thread(_theory, **m.args))
        elif m.type == "activation":
            await self.ws.send_text(await asyncio.to_thread(_activation_sheet, m.args["name"]))
        elif m.type == "close":
            s = self.sessions.pop(m.run, None)
            self.sent.pop(m.run, None)
            if s is not None:
                await asyncio.to_thread(s.close)
            await self.send({"type": "closed", "run": m.run})
        else:
            s = self.sessions.get(m.run)
            if s is None:
                await self.error(f"run {m.run!r} has no setup yet; send a 'configure' message first", m.type)
            elif s is self.live:
                await self.error("a live run is driven by your own training loop; the buttons do not apply", m.type)
            elif m.type == "reset":
                await self.configure(m.run, s.config, fresh=True)
            elif m.type == "play":
                s.play()
            elif m.type == "pause":
                s.pause()
            elif m.type == "step":
                s.step(m.args["n"])

    def close(self) -> None:
        for s in self.sessions.values():
            if s is not self.live:  # the feed belongs to the user's loop and outlives a page
                s.close(timeout=2.0)
        self.sessions.clear()


async def _ws(ws: WebSocket) -> None:
    await ws.accept()
    opening = ws.app.state.opening
    if opening is not None:
        await opening.wait()
    from actlab.play.config import PlayError
    from actlab.play.protocol import parse_message

    page = _Page(ws, ws.app.state.frame_interval, ws.app.state.live, opening)
    ws.app.state.pages.add(page)
    sender = asyncio.create_task(page.sender())
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            raw = msg.get("text") if msg.get("text") is not None else msg.get("bytes")
            try:
                m = parse_message(raw)
            except PlayError as e:
                await page.error(str(e))
                continue
            try:
                await page.handle(m)
            except WebSocketDisconnect:
                raise
            except Exception as e:  # a setup the lab cannot run is an answer, not the end of the page
                await page.error(f"could not do {m.type!r}: {type(e).__name__}: {e}"[:500], m.type)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sender.cancel()
        ws.app.state.pages.discard(page)
        await asyncio.to_thread(page.close)


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


async def _controls(request: Request) -> JSONResponse:
    if request.app.state.opening is not None:
        await request.app.state.opening.wait()
    from actlab import __version__
    from actlab.lab.data import SYNTHETIC_NOISE
    from actlab.play.config import SHARED_FIELDS, PlayConfig, describe_fields

    return JSONResponse({"controls": describe_fields(), "default": PlayConfig().to_dict(), "shared": list(SHARED_FIELDS),
                         "noise": SYNTHETIC_NOISE, "version": __version__})


def _warm_up(config: PlayConfig) -> None:
    """Take one probed step on a throwaway copy of the opening setup, so that the first press of
    play does not wait for the probe's imports and its numba kernels (loaded from numba's cache)."""
    from actlab.play.session import Session

    s = Session(config, frame_interval=3600.0)
    try:
        s.step(1)
        deadline = time.monotonic() + 60.0
        while s.steps < 1 and s.state == "running" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        s.close()


class Opening:
    """The start-up work, in a background thread: import torch and the library (setting torch's
    threads), build the opening setup (run A of ``query``, else the
    :class:`~actlab.play.config.PlayConfig` defaults) with its first frame, then warm the probe up.

    The first page that asks for exactly that setup takes the built net (:meth:`take`); anyone
    else builds their own.  Handlers that need the library ``await`` :meth:`wait` first.

    Args:
        frame_interval: the server's frame interval (the opening session is built with it).
        threads: torch's intra-op threads for the process; ``None`` leaves them.
        build: build the opening setup and warm the probe up (``False``: imports only).
        query: the setup the page opens with, as a link's query (``""``: the defaults).
    """

    def __init__(self, frame_interval: float, threads: int | None = 1, build: bool = True, query: str = "") -> None:
        self.frame_interval = float(frame_interval)
        self.threads = threads
        self.build = build
        self.query = query
        self.session: Session | None = None
        self.error = ""
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="actlab-play-opening", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import torch

            if self.threads is not None:
                # Two nets side by side each get one core; more threads only spin against each other here.
                torch.set_num_threads(int(self.threads))
            from actlab.play.config import PlayConfig, PlayError, parse_query
            from actlab.play.protocol import parse_message  # noqa: F401  (what every message needs)
            from actlab.play.session import Session

            try:
                config = parse_query(self.query)[0] if self.query else PlayConfig()
            except PlayError:  # refused again when the page sends it; the defaults are worth building
                config = PlayConfig()
            if self.build:
                s = Session(config, frame_interval=self.frame_interval)
                s.intro()  # kept by the session: the page's "ready" message costs nothing more
                self.session = s
        except Exception as e:  # the page still works: each setup is then built (and fails) on request
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self._done.set()
        if self.build and not self.error:
            try:
                _warm_up(config)
            except Exception:  # a warm-up only saves time; the first real step reports any real problem
                pass

    async def wait(self) -> None:
        """Until the library is imported and the opening setup built (off the event loop)."""
        if not self._done.is_set():
            await asyncio.to_thread(self._done.wait)

    def take(self, config: PlayConfig, frame_interval: float) -> Session | None:
        """The opening session if it is ``config``'s, unused and built for ``frame_interval``
        (once: the next caller builds their own), else ``None``."""
        with self._lock:
            s = self.session
            if (s is None or s.config != config or s.frame_interval != frame_interval or s.steps
                    or s.state != "paused"):
                return None
            self.session = None
            return s

    def close(self) -> None:
        with self._lock:
            s, self.session = self.session, None
        if s is not None:
            s.close(timeout=2.0)


def create_app(*, frame_interval: float = 0.05, warm_up: bool = True, live: Any = None,
               threads: int | None = None, query: str = "") -> Starlette:
    """The playground as an ASGI app (``uvicorn`` serves it; tests use Starlette's TestClient).

    Args:
        frame_interval: seconds between frames of a running net.  Default: ``0.05``
        warm_up: import the library, build the opening setup and compile the probe's kernels in
            the background from now on (:class:`Opening`).  Default: ``True``
        live: a :class:`~actlab.play.live.LiveFeed` the page shows with ``?live=1``.
        threads: torch's intra-op threads, set by the warm-up.  Default: ``None`` (left as they are)
        query: the setup the page opens with (built by the warm-up), as a link's query.
    """
    app = Starlette(routes=[
        Route("/", _index),
        Route("/api/controls", _controls),
        Route("/favicon.ico", _no_icon),
        WebSocketRoute("/ws", _ws),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
    app.state.frame_interval = float(frame_interval)
    app.state.pages = set()
    app.state.live = live
    app.state.opening = Opening(frame_interval, threads, query=query) if warm_up else None
    return app


def free_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host``: ``port`` 0 lets the OS pick a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def serve(host: str = "127.0.0.1", port: int = 0, *, open_browser: bool = True, query: str = "",
          on_ready: Callable[[str], None] | None = None, frame_interval: float = 0.05, live: Any = None,
          threads: int | None = 1) -> None:
    """Serve the playground until interrupted.

    Args:
        host: interface to bind.  Default: ``"127.0.0.1"`` (this machine only)
        port: TCP port; ``0`` picks a free one.  Default: ``0``
        open_browser: open the page in the default browser once the server listens.
        query: a setup to open, as a URL query (``"activation=relu&depth=10"``).
        on_ready: called with the URL once the server listens (the CLI prints it).
        frame_interval: seconds between frames of a running net.
        live: a :class:`~actlab.play.live.LiveFeed` to show (:func:`actlab.play.watch`).
        threads: torch's intra-op threads for the process; ``None`` leaves them (a user's process).
    """
    # No torch here: it is imported by the app's warm-up in the background (the URL comes first).
    import uvicorn

    sock = free_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/" + (f"?{query.lstrip('?')}" if query else "")
    app = create_app(frame_interval=frame_interval, warm_up=live is None, live=live, threads=threads,
                     query=query.lstrip("?"))
    if live is not None and threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    # No per-message deflate: frames are small, and compressing them would hold the GIL that the
    # training thread needs (frames took several times longer to build with it on).
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="auto", ws_per_message_deflate=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            if on_ready is not None:
                on_ready(url)
            if open_browser:
                import webbrowser

                threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        await task

    try:
        asyncio.run(run())
    finally:
        if app.state.opening is not None:
            app.state.opening.close()
        sock.close()


__all__ = ["Opening", "create_app", "free_socket", "serve"]
