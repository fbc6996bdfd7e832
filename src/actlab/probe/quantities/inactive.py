"""Inactive units: units whose derivative is zero for every sample of this step's batch.

*Inactive* is about one batch; *dead* (:mod:`.dead`) is inactive on every recorded step of a
window; *dead on data* is inactive on the whole data set (:func:`.dead.dead_on_data`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot


def inactive_units(d: Tensor, sample_dims: Any = 0) -> Tensor:
    """Units with ``f' = 0`` on every sample (bool, one per unit).

    Args:
        d: the derivative ``f'(x)`` at the pre-activations.
        sample_dims: the dimensions of samples (and positions) reduced over; the rest index units.
            Default: ``0`` (``d`` is ``(N, units)``).  The sweep engine passes ``1`` for its
            ``(models, N, units)`` tensors; a conv layer's channels need ``(0, 2, 3)``.
    """
    return d.abs().amax(sample_dims) == 0  # NaN compares unequal: a unit with a NaN is not inactive


def inactive_share(d: Tensor, sample_dims: Any = 0) -> Tensor:
    """The fraction of units that are :func:`inactive_units` (over the last dimension left)."""
    return inactive_units(d, sample_dims).double().mean(-1)


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
