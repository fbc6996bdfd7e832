"""The one progress protocol: ``progress(fraction, message)``.

Every long job (an experiment, a sweep, the lab) reports through a callable of this shape:
``fraction`` is the share done in ``[0, 1]`` and ``message`` a short human note ("seed 3",
"12 of 32 models").  Front ends (the CLI's progress bars, the playground) turn it into a bar;
library code never prints.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Progress", "no_progress"]


class Progress(Protocol):
    """``progress(fraction, message)``: ``fraction`` done in ``[0, 1]``, ``message`` a short note."""

    def __call__(self, fraction: float, message: str = "") -> None: ...


def no_progress(fraction: float, message: str = "") -> None:
    """A :class:`Progress` that reports nowhere."""
    return None
