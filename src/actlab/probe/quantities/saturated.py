"""Saturated share: the fraction of (sample, unit) where the layer's own activation is flat.

The one saturation rule: a (sample, unit) is saturated when ``|f'(x)| < tol * max|f'|``, with f
the layer's activation from the catalog and ``tol`` = :data:`SATURATION_TOL` unless the caller
says otherwise.  A strict ``<``: ReLU's negative side (``f' = 0``) is saturated for any tol > 0,
its positive side (``f' = max|f'|``) never.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot

#: The default ``tol`` of the saturation rule, a fraction of max|f'|.
SATURATION_TOL = 0.05


def saturated(d: Tensor, max_abs_derivative: float, tol: float = SATURATION_TOL) -> Tensor:
    """Where ``|f'| < tol * max|f'|`` (bool, the shape of ``d``).

    Args:
        d: the activation's derivative ``f'(x)`` at the pre-activations
            (:func:`actlab.probe.quantities.base.derivative`).
        max_abs_derivative: ``max|f'|`` of the activation (``spec.max_abs_derivative``).
        tol: fraction of ``max|f'|``. Default: :data:`SATURATION_TOL`.
    """
    return d.abs() < tol * max_abs_derivative


def saturated_share(d: Tensor, max_abs_derivative: float, tol: float = SATURATION_TOL, dims: Any = None) -> Tensor:
    """The fraction of elements of ``d`` that are :func:`saturated` (over ``dims``; all by default)."""
    s = saturated(d, max_abs_derivative, tol).double()
    return s.mean() if dims is None else s.mean(dims)


QUANTITY = Quantity(
    order=20,
    key="saturated",
    doc="fraction of (sample, unit) of an activation layer with |f'| < tol * max|f'|",
    schedule="step",
    target="activation",
    fields=(Field("saturated", "fraction of (sample, unit) with |f'(x)| < tol * max|f'| (tol: Probe(saturation=...))"),),
    reduce=saturated_share,
    plot=series_plot("saturated", "saturated (sample, unit), %", percent=True),
)
