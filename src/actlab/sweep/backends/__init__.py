"""Where chunks of configurations are trained: ``local`` (this process, or a process pool) and
``ray`` (a Ray cluster).  Every backend trains the chunks :func:`actlab.sweep.engine.group_configs`
makes, and the driver alone writes to the store.

While a backend runs it registers how to stop its workers (:func:`stopping`), so an interrupted
driver stops every backend's workers with one call (:func:`stop_workers`) before it exits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

BACKENDS = ("local", "ray")

_STOPS: dict[int, Callable[[], None]] = {}
"""How to stop the workers of each backend running now (keyed by the stopper's id)."""


@contextmanager
def stopping(stop: Callable[[], None]) -> Iterator[None]:
    """Register ``stop`` (kill this backend's workers now) for as long as the block runs."""
    _STOPS[id(stop)] = stop
    try:
        yield
    finally:
        _STOPS.pop(id(stop), None)


def stop_workers() -> None:
    """Stop the workers of every running backend now (the driver was interrupted and is about to
    exit).  Each stopper is tried even when another one fails: the point is that none survives."""
    for stop in list(_STOPS.values()):
        try:
            stop()
        except Exception:  # noqa: BLE001 - best effort on the way out; the next stopper still runs
            pass
