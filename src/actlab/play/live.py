"""Your own training, live: stream a :class:`~actlab.Probe` on any model into the playground's panels.

Example::

    >>> from actlab import Probe
    >>> from actlab.play import watch
    >>> with Probe(model) as probe, watch(probe) as live:   # prints the URL, opens the browser
    ...     for x, y in loader:
    ...         loss = loss_fn(model(x), y)
    ...         opt.zero_grad(); loss.backward(); opt.step()
    ...         live.loss(loss)                             # optional: the loss panel

The probe is read in *your* training thread, never concurrently with it: a forward pre-hook on
the model builds a frame (at most every ``interval`` seconds) just before a training-mode
forward, when the previous step's backward and update are done.  The server runs in a daemon
thread; the page opened at the printed URL shows the gradient, dead / saturated and findings
panels of the probe (no decision surface or histograms: those need the playground's own nets).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from torch import Tensor

from actlab.play.session import FrameSource, ProbeView, json_number
from actlab.probe import Probe


class LiveFeed(FrameSource):
    """Frames of a probe on a user's model, for the playground's page (see :func:`watch`).

    Attributes:
        seq, frame: the newest frame and its sequence number (what the server sends).
        url: where the page is, once served.
    """

    def __init__(self, probe: Probe, *, interval: float = 0.1) -> None:
        if not isinstance(probe, Probe):
            raise TypeError(f"watch needs an actlab.Probe, got {type(probe).__name__}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        super().__init__()
        self.probe = probe
        self.interval = float(interval)
        self.frame = {"step": 0, "state": "running", "grads": None, "findings": []}
        self.url = ""
        self._view = ProbeView()
        self._last = -float("inf")
        self._loss: float | Tensor | None = None
        # prepend: runs before the probe's own pre-hook, so the previous step is complete when read.
        self._handle = probe.model.register_forward_pre_hook(self._tick, prepend=True)

    def loss(self, value: float | Tensor) -> None:
        """Report the step's training loss (read lazily: a tensor is synced only when a frame is built)."""
        self._loss = value

    def _tick(self, module: Any, args: Any) -> None:
        if not module.training or time.perf_counter() - self._last < self.interval:
            return
        self.publish()

    def publish(self, state: str = "running") -> None:
        """Build a frame from the probe now (call from the training thread)."""
        loss = self._loss
        if isinstance(loss, Tensor):
            loss = float(loss.detach())
        frame = {"step": self.probe.current_step, "state": state, "error": "",
                 "loss": {"train": json_number(loss) if loss is not None else None, "test": None,
                          "train_error": None, "test_error": None}}
        frame.update(self._view.panels(self.probe, busy=state == "running"))
        self._last = time.perf_counter()
        self._post(frame)

    def intro(self) -> dict[str, Any]:
        m = self.probe.model
        return {"config": {}, "live": True, "plane": False, "model": type(m).__name__,
                "title": f"your {type(m).__name__}, live", "saturated": [], "theory_note": "", "theory": None}

    # A live run is driven by the user's loop: the page's transport buttons do not apply.
    def play(self) -> None: ...

    def pause(self) -> None: ...

    def step(self, n: int = 1) -> None: ...

    def close(self, timeout: float = 0.0) -> None:
        """Stop feeding frames (the probe stays attached)."""
        self._handle.remove()
        self.on_frame = None

    def __enter__(self) -> "LiveFeed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.publish(state="stopped")
        self.close()


def watch(probe: Probe, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
          interval: float = 0.1, quiet: bool = False) -> LiveFeed:
    """Serve the playground with ``probe``'s records streaming into it, in a background thread.

    Args:
        probe: an attached (or about to be) :class:`~actlab.Probe` on your model.
        host, port: where to listen.  Default: ``127.0.0.1``, a free port
        open_browser: open the page.  Default: ``True``
        interval: seconds between frames.  Default: ``0.1``
        quiet: do not print the URL.

    Returns:
        The :class:`LiveFeed` (a context manager; ``feed.url`` is the page).
    """
    from actlab.play.server import serve

    feed = LiveFeed(probe, interval=interval)
    started = threading.Event()

    def ready(url: str) -> None:
        feed.url = url
        if not quiet:
            print(f"actlab play (live) at {url}", flush=True)
        started.set()

    t = threading.Thread(target=serve, kwargs=dict(host=host, port=port, open_browser=open_browser, query="live=1",
                                                   on_ready=ready, live=feed, threads=None),
                         name="actlab-play-live", daemon=True)
    t.start()
    if not started.wait(60.0):
        raise RuntimeError("the playground server did not start within 60 s")
    return feed


__all__ = ["LiveFeed", "watch"]
