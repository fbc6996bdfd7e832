"""Inactive units: units whose derivative is zero for every sample of this step's batch.

*Inactive* is about one batch; *dead* (:mod:`.dead`) is inactive on every recorded step of a
window; *dead on data* is inactive on the whole data set (:func:`.dead.dead_on_data`).  The rule
itself, :func:`inactive_units`, lives on the catalog's floor (:mod:`actlab.activations.regions`),
where the theory's born-dead estimate calls it too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from actlab.activations.regions import inactive_units
from actlab.probe.quantities.base import Field, Quantity, series_plot


def inactive_share(abs_d: Tensor, sample_dims: Any = 0) -> Tensor:
    """The fraction of units that are :func:`inactive_units` (over the last dimension left), in
    ``abs_d``'s floating dtype."""
    dtype = abs_d.dtype if abs_d.is_floating_point() else torch.float64
    return inactive_units(abs_d, sample_dims).to(dtype).mean(-1)


QUANTITY = Quantity(
    order=30,
    key="inactive",
    doc="fraction of an activation layer's units with f' = 0 for every sample of this step's batch",
    schedule="step",
    target="activation",
    fields=(Field("inactive", "fraction of units whose derivative was zero for every sample of this step"),),
    reduce=inactive_share,
    plot=series_plot("inactive", "inactive units (this step), %", percent=True),
)

__all__ = ["QUANTITY", "inactive_share", "inactive_units"]
