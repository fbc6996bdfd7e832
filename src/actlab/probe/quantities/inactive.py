"""Inactive units: units whose derivative is zero for every sample of this step's batch.

*Inactive* is about one batch; *dead* (:mod:`.dead`) is inactive on every recorded step of a
window; *dead on data* is inactive on the whole data set (:func:`.dead.dead_on_data`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot


def inactive_units(abs_d: Tensor, sample_dims: Any = 0) -> Tensor:
    """Units with ``f' = 0`` on every sample (bool, one per unit).

    Args:
        abs_d: the magnitude of the derivative, ``|f'(x)|``, at the pre-activations (a
            magnitude: the sweep engine has it at hand, and one pass is saved).
        sample_dims: the dimensions of samples (and positions) reduced over; the rest index units.
            Default: ``0`` (``abs_d`` is ``(N, units)``).  The sweep engine passes ``1`` for its
            ``(models, N, units)`` tensors; a conv layer's channels need ``(0, 2, 3)``.
    """
    return abs_d.amax(sample_dims) == 0  # NaN compares unequal: a unit with a NaN is not inactive


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
