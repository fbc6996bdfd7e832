"""The one switch for actlab's numba kernels (the probe's fused statistics, the catalog's fused
float32 forwards): ``ACTLAB_FUSED=0`` (or ``false``, ``no``, ``off``) keeps torch's own kernels
everywhere; the numbers are the same either way."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

ENV = "ACTLAB_FUSED"


def disabled_by_env() -> bool:
    """Whether ``ACTLAB_FUSED`` turns the numba kernels off."""
    return os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off")


def load(build: Callable[[], Any]) -> Any:
    """``build()`` (which imports numba), or False when ``ACTLAB_FUSED`` is off or numba is missing."""
    if disabled_by_env():
        return False
    try:
        return build()
    except ImportError:
        return False
