"""The one JSON convention of actlab: strict JSON, with NaN and +-inf written as ``null``.

Every JSON actlab prints or writes (CLI ``--json``, reports, probe exports, sweep summaries)
goes through :func:`dumps`, so every parser reads it and a missing or undefined number looks
the same everywhere.  NumPy and torch scalars and arrays become plain numbers and lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "jsonable"]


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None``, mappings keyed by strings, tuples as lists and
    NumPy / torch scalars and arrays as numbers and lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, torch tensors
        return jsonable(obj.tolist())
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


def dumps(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``obj`` (see :func:`jsonable`); values JSON cannot hold are written with ``str``."""
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False, default=str)
