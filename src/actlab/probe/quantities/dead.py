"""Dead units: units inactive (f' = 0 on every sample) on every recorded step of a window.

The probe keeps, per unit, the number of recorded steps it has been inactive in a row (its
streak); a unit is dead when the streak reaches the window (``Probe(window=...)`` steps, i.e.
``ceil(window / every)`` recorded steps).  *Dead on data* is the same test over every batch of a
data set at one moment (:func:`dead_on_data`); *born dead* is dead on data at initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot


def dead_units(inactive: Tensor, window: int) -> Tensor:
    """Units inactive on each of the last ``window`` rows of ``inactive`` (bool, one per unit).

    Args:
        inactive: ``(steps, units)`` :func:`~actlab.probe.quantities.inactive.inactive_units`
            of consecutive recorded steps, oldest first.
        window: recorded steps a unit must stay inactive; none is dead before that many steps.
    """
    if inactive.shape[0] < window:
        return torch.zeros(inactive.shape[1:], dtype=torch.bool, device=inactive.device)
    return inactive[-window:].all(0)


def streaks(inactive: Tensor, start: Tensor | None = None) -> Tensor:
    """Per unit, the recorded steps it has been inactive in a row at the last row of ``inactive``.

    Args:
        inactive: ``(steps, units)`` bool, oldest first.
        start: the streaks before the first row (zeros by default).
    """
    run = torch.zeros(inactive.shape[1:], device=inactive.device) if start is None else start.clone().float()
    for row in inactive:
        run = torch.where(row, run + 1, torch.zeros_like(run))
    return run


def dead_on_data(inactive_per_batch: Iterable[Tensor]) -> Tensor:
    """Units inactive on every batch of a data set: dead on the data (bool, one per unit).

    Args:
        inactive_per_batch: :func:`~actlab.probe.quantities.inactive.inactive_units` of each batch.
    """
    out = None
    for m in inactive_per_batch:
        out = m.clone() if out is None else out & m
    if out is None:
        raise ValueError("dead_on_data needs at least one batch, got none")
    return out


QUANTITY = Quantity(
    order=40,
    key="dead",
    doc="fraction of an activation layer's units inactive on every recorded step of the window",
    schedule="window",
    target="activation",
    fields=(Field("dead", "fraction of units whose derivative was zero on every recorded step of the window"),),
    reduce=dead_units,
    plot=series_plot("dead", "dead units (f' = 0 over the window), %", percent=True),
)
