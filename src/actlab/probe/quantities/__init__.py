"""The probe's quantities, one file each (see :mod:`.base` for what a quantity declares).

Every module of this package that defines ``QUANTITY`` is one; :data:`QUANTITIES` lists them by
their ``order`` (the order of their fields in :class:`~actlab.probe.records.LayerRecord`).  Their
reductions are plain functions on tensors that the lab and the sweep engine call too, so a number
means the same everywhere; import them from their file (``from
actlab.probe.quantities.inactive import inactive_units``).
"""

from __future__ import annotations

import importlib
import pkgutil

from actlab.probe.quantities.base import Field, Quantity, derivative, module_derivative
from actlab.probe.quantities.saturated import SATURATION_TOL


def _discover() -> tuple[Quantity, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        q = getattr(importlib.import_module(f"{__name__}.{info.name}"), "QUANTITY", None)
        if isinstance(q, Quantity):
            found.append(q)
    keys = [q.key for q in found]
    if len(set(keys)) != len(keys):
        raise RuntimeError(f"two probe quantities share a key: {sorted(keys)}")
    return tuple(sorted(found, key=lambda q: (q.order, q.key)))


#: Every quantity, in record-field order.
QUANTITIES: tuple[Quantity, ...] = _discover()

__all__ = ["QUANTITIES", "SATURATION_TOL", "Field", "Quantity", "derivative", "module_derivative"]
