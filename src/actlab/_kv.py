"""The one ``KEY=VALUE`` parser of the command line (``--param alpha=0.5``, ``--axis lr=0.1,0.01``)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PairError", "parse_pairs"]


class PairError(ValueError):
    """An item is not ``KEY=VALUE``, or a key is given twice (one-line message)."""


def parse_pairs(items: Iterable[str], *, option: str, form: str = "KEY=VALUE", hint: str = "") -> dict[str, str]:
    """``["alpha=0.5", "beta = 2"]`` -> ``{"alpha": "0.5", "beta": "2"}`` (keys and values stripped).

    Args:
        items: the raw command-line values.
        option: the option's name for messages (``"--param"``).
        form: the expected form for messages (``"NAME=V1,V2,..."``).
        hint: appended to messages, e.g. the valid keys.

    Raises:
        PairError: an item without ``=``, with an empty key or value, or a key given twice.
    """
    out: dict[str, str] = {}
    tail = f"; {hint}" if hint else ""
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise PairError(f"{option} {item!r} is not {form}{tail}")
        if key in out:
            raise PairError(f"{option} {key!r} is given twice")
        out[key] = value
    return out
