"""The one number formatter for text meant for people (tables, findings, notes, docs pages).

``number(0.123456)`` -> ``"0.1235"``; ``number(float("inf"))`` -> ``"inf"``; ``number(nan)`` ->
``"n/a"``; ``number(None)`` -> ``"-"``; ``number(3.2e-5, 3, sci=True)`` -> ``"3.2e-05"``.
JSON keeps full precision and has its own convention (:mod:`actlab._json`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["number"]


def number(v: Any, digits: int = 4, *, sci: bool = False) -> str:
    """``v`` with ``digits`` significant digits.

    Args:
        v: a number (anything else is returned as ``str(v)``; ``None`` as ``"-"``).
        digits: significant digits. Default: ``4``.
        sci: write magnitudes below ``1e-2`` or from ``1e4`` on in scientific notation.
    """
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        return str(v)
    if isinstance(v, int):
        return str(v)
    x = float(v)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    # Round the last float digits away first: a value such as 0.50005 from a quadrature sits on a
    # rounding boundary, where an ulp-level change would flip the printed digit.
    x = float(f"{x:.9g}")
    a = abs(x)
    if sci and (a < 1e-2 or a >= 1e4):
        return f"{x:.{max(digits - 2, 1)}e}"
    return f"{x:.{digits}g}"
