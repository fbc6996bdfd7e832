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
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from actlab.play.config import SHARED_FIELDS, PlayConfig, PlayError, describe_fields
from actlab.play.protocol import Message, parse_message

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

    def __init__(self, ws: WebSocket, frame_interval: float, live: Any = None) -> None:
        self.ws = ws
        self.live = live
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

    async def configure(self, run: str, config: PlayConfig) -> None:
        from actlab.play.session import Session

        old = self.sessions.pop(run, None)
        self.sent.pop(run, None)
        if old is not None:
            await asyncio.to_thread(old.close)
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
                await self.configure(m.run, s.config)
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
    page = _Page(ws, ws.app.state.frame_interval, ws.app.state.live)
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
    from actlab import __version__

    from actlab.lab.data import SYNTHETIC_NOISE

    return JSONResponse({"controls": describe_fields(), "default": PlayConfig().to_dict(), "shared": list(SHARED_FIELDS),
                         "noise": SYNTHETIC_NOISE, "version": __version__})


def _warm_up() -> None:
    """Build the opening setup once and take one probed step, in the background at start-up, so
    the first page does not wait for imports (scikit-learn, matplotlib) and kernel compilation."""
    from actlab.play.session import Session

    s = Session(PlayConfig(), frame_interval=3600.0)
    try:
        s.step(1)
        deadline = time.monotonic() + 60.0
        while s.steps < 1 and s.state == "running" and time.monotonic() < deadline:
            time.sleep(0.01)
        s.intro()
    finally:
        s.close()


def create_app(*, frame_interval: float = 0.05, warm_up: bool = True, live: Any = None) -> Starlette:
    """The playground as an ASGI app (``uvicorn`` serves it; tests use Starlette's TestClient).

    Args:
        frame_interval: seconds between frames of a running net.  Default: ``0.05``
        warm_up: compile the probe's kernels in the background at start-up.  Default: ``True``
        live: a :class:`~actlab.play.live.LiveFeed` the page shows with ``?live=1``.
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
    if warm_up:
        threading.Thread(target=_warm_up, name="actlab-play-warm-up", daemon=True).start()
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
    import torch
    import uvicorn

    if threads is not None:
        # Two nets side by side each get one core; more threads only spin against each other here.
        torch.set_num_threads(int(threads))
    sock = free_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/" + (f"?{query.lstrip('?')}" if query else "")
    app = create_app(frame_interval=frame_interval, warm_up=live is None, live=live)
    # No per-message deflate: frames are small, and compressing them would hold the GIL that the
    # training thread needs (measured: frames took 3x longer to build with it on).
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
        sock.close()


__all__ = ["create_app", "free_socket", "serve"]
