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
thread; the page opened at the printed URL shows the probe's panels: gradient norms per layer,
dead and saturated fractions, findings, and each activation layer's pre-activation histogram
with its activation's saturated regions shaded (the probe's ``"histogram"`` quantity, which the
feed turns on).  When the model's input is 2-D (``(batch, 2)``) the page also shows the decision
surface: the model, in eval mode and without gradients, on a grid over the inputs seen so far;
otherwise the panel says why there is none.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch
from torch import Tensor

from actlab.play.session import (SURFACE, FrameSource, ProbeView, _b64, _u8, json_number, plane_grid,
                                 saturated_regions, surface_values)
from actlab.probe import Probe

POINTS = 200  # inputs of the latest batch drawn on the surface


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
        probe.enable("histogram")
        self._saturated: dict[str, list[list[float]]] = {}
        self._x: Tensor | None = None  # the latest training input (the surface is drawn around it)
        self._box: list[float] | None = None  # [x0, x1, y0, y1] of the inputs seen so far
        self._no_surface = ""  # why not, once the model's forward failed on the grid
        # prepend: runs before the probe's own pre-hook, so the previous step is complete when read.
        self._handle = probe.model.register_forward_pre_hook(self._tick, prepend=True)

    def loss(self, value: float | Tensor) -> None:
        """Report the step's training loss (read lazily: a tensor is synced only when a frame is built)."""
        self._loss = value

    def _tick(self, module: Any, args: Any) -> None:
        if not module.training or time.perf_counter() - self._last < self.interval:
            return
        self._x = next((a for a in args if isinstance(a, Tensor)), None) if isinstance(args, tuple) else None
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
        frame["hist"] = self._histograms()
        frame.update(self._surface())
        self._last = time.perf_counter()
        self._post(frame)

    def _histograms(self) -> list[dict[str, Any]]:
        """The probe's latest histogram of each activation layer, with its saturated regions."""
        params = {l.name: (l.spec, l.params) for l in self.probe.layers if l.spec is not None}
        out = []
        for name, h in self.probe.read().histograms.items():
            if name not in self._saturated:
                spec, p = params.get(name, (None, {}))
                self._saturated[name] = saturated_regions(spec, p) if spec is not None else []
            out.append({"layer": name, "step": h.step, "r": h.r, "counts": h.counts.tolist(),
                        "saturated": self._saturated[name]})
        return out

    def _surface(self) -> dict[str, Any]:
        """The decision surface over the inputs seen so far, or why there is none."""
        x = self._x
        if self._no_surface:
            return {"surface_note": self._no_surface}
        if x is None:
            return {"surface_note": "no training input seen yet"}
        if not x.is_floating_point() or x.dim() != 2 or x.shape[1] != 2:
            return {"surface_note": f"the model's input is {x.dtype} of shape {tuple(x.shape)}, not (batch, 2) "
                                    "floats: a decision surface needs 2-D inputs"}
        v = x.detach().float()
        lo, hi = v.amin(0).tolist(), v.amax(0).tolist()
        if self._box is not None:  # the box only grows, so the picture keeps its place
            lo = [min(a, b) for a, b in zip(lo, self._box[0::2])]
            hi = [max(a, b) for a, b in zip(hi, self._box[1::2])]
        pad = [max(0.1 * (b - a), 1e-3) for a, b in zip(lo, hi)]
        box = [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]
        self._box = [lo[0], hi[0], lo[1], hi[1]]
        model = self.probe.model
        modes = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            with torch.no_grad():
                # forward(), not model(...): the root's hooks (the probe's step counter, this
                # feed's own) are not run for a picture; the probe's layer hooks see no recording.
                out = model.forward(plane_grid(tuple(box), SURFACE).to(device=x.device, dtype=x.dtype))
        except Exception as e:  # a forward that needs more than a batch of inputs: said once, not retried
            self._no_surface = f"the model's forward did not run on a grid of 2-D points ({type(e).__name__}: {e})"[:300]
            return {"surface_note": self._no_surface}
        finally:
            for m, mode in modes:
                m.training = mode
        if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[0] != SURFACE * SURFACE:
            return {"surface_note": "the model's output is not one row per input: no decision surface"}
        values, what = surface_values(out.cpu())
        if values is None:
            return {"surface_note": what}
        pts = v[:POINTS].cpu()
        return {"surface": _b64(_u8(values, 0.0, 1.0)), "surface_what": what, "box": box,
                "points": [[round(float(a), 3), round(float(b), 3)] for a, b in pts.tolist()]}

    def intro(self) -> dict[str, Any]:
        m = self.probe.model
        return {"config": {}, "live": True, "plane": False, "model": type(m).__name__,
                "title": f"your {type(m).__name__}, live", "saturated": [], "theory": None}

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
