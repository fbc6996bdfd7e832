"""The playground: build a small network in the browser and watch it train, live.

``actlab play`` serves it (:func:`actlab.play.server.serve`); :mod:`actlab.play.config` holds
the controls, :mod:`actlab.play.session` runs one net with the lab's trainer and the probe, and
:func:`watch` streams a probe on your own model into the same panels.

``watch`` and ``LiveFeed`` are loaded on first use (PEP 562 ``__getattr__``): importing
:mod:`actlab.play.server` must not import torch, so that ``actlab play`` prints its URL before
torch has loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from actlab.play.live import LiveFeed, watch


def __getattr__(name: str) -> Any:
    if name in ("LiveFeed", "watch"):
        from actlab.play import live

        value = getattr(live, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'actlab.play' has no attribute {name!r}")


__all__ = ["LiveFeed", "watch"]
