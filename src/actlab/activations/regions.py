"""Where an activation passes no gradient: the two rules on its derivative, declared once.

* *Inactive*: ``f' = 0`` at every sample (:func:`inactive_units`).  The probe's inactive and dead
  quantities, the sweep engine's unit states and the theory's born-dead estimate
  (:mod:`actlab.theory.dying`) all decide it here.
* *Saturated*: ``|f'| < tol * max|f'|`` on a side the activation saturates on
  (``spec.saturates``; a rectifier's zero side is inactive, not saturated), with ``tol`` =
  :data:`SATURATION_TOL` unless the caller says otherwise; the probe's saturated quantity (:mod:`actlab.probe.quantities.saturated`) and
  the catalog's plots (:mod:`actlab.plot.activations`, the shaded regions) read the one constant.

They sit on the catalog's floor, below the plots, the theory and the probe, so every floor above
calls the same rule.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

#: The default ``tol`` of the saturation rule ``|f'| < tol * max|f'|``, a fraction of max|f'|.
SATURATION_TOL = 0.05


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


__all__ = ["SATURATION_TOL", "inactive_units"]
