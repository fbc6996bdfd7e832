"""Identical units: the share of a layer's units whose incoming weights and bias equal another's.

Two such units compute the same function of the input; when their outgoing weights are equal too
(a zero- or constant-initialised network) they get the same gradients and stay equal for ever:
the layer has the capacity of one unit.  A share above 0 at initialisation reveals that broken
symmetry; after training from a random start it stays 0.

Measured on the parameters of layers with a weight of 2 or more dimensions (Linear, Conv: a
unit is an output row or channel), on the ``update`` schedule.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from actlab.probe.quantities import _rows
from actlab.probe.quantities.base import Field, Quantity, series_plot

_NUMBA = (torch.float32, torch.float64)


def identical_units(weight: Tensor, bias: Tensor | None = None) -> Tensor | None:
    """Share of units (rows of ``weight``, with their bias) equal to at least one other unit.

    Args:
        weight: ``(units, ...)``; ``None`` is returned for weights of fewer than 2 dimensions.
        bias: ``(units,)`` or ``None``.

    Returns:
        a 0-d float64 tensor in ``[0, 1]`` (exact equality, no tolerance), or ``None``.
    """
    if weight.dim() < 2 or weight.shape[0] < 2:
        return None
    w = weight.detach().reshape(weight.shape[0], -1)
    b = bias.detach() if bias is not None and bias.dim() == 1 and bias.shape[0] == w.shape[0] else None
    units = w.shape[0]
    if w.device.type == "cpu" and w.dtype in _NUMBA and (b is None or b.dtype in _NUMBA) and _rows.available():
        n = _rows.duplicate_rows(w.numpy(), None if b is None else b.numpy())
        return torch.tensor(n / units, dtype=torch.float64)
    # Units that differ in their first weight cannot be equal (not the bias: often all zero):
    # compare whole rows only for the candidates (all of them in a symmetric layer, next to none
    # in a randomly initialised one).  On the CPU one numba call does it all (_rows); elsewhere
    # sorting one column is far cheaper than a whole-row unique(dim=0).  The branch reads one
    # bool from the device, on the update schedule only.  (unique(dim=0) can miscount rows that
    # hold a NaN; the numba path compares values: a row with a NaN equals none.)
    first = w[:, 0]
    if first.device.type == "cpu" and first.dtype in (torch.float32, torch.float64):
        v = np.sort(first.numpy())
    else:
        v = first.sort().values
    if not bool((v[1:] == v[:-1]).any()):
        return torch.zeros((), dtype=torch.float64, device=weight.device)
    _, inv, counts = torch.unique(first, return_inverse=True, return_counts=True)
    cand = torch.nonzero(counts[inv] > 1).view(-1)
    rows = w[cand] if b is None else torch.cat([b[cand, None].to(w.dtype), w[cand]], 1)
    _, inv, counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    return (counts[inv] > 1).sum().double() / units


QUANTITY = Quantity(
    key="identical_units",
    doc="share of a layer's units whose incoming weights and bias equal another unit's (broken symmetry)",
    schedule="update",
    target="parameters",
    fields=(Field("identical_units", "share of the layer's units whose weights and bias equal another unit's"),),
    reduce=identical_units,
    probe="generic",
    plot=series_plot("identical_units", "identical units, %", percent=True),
)
