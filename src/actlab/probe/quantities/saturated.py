"""Saturated share: the fraction of (sample, unit) where the layer's own activation is flat.

The one saturation rule: a (sample, unit) is saturated when ``|f'(x)| < tol * max|f'|``, with f
the layer's activation from the catalog and ``tol`` = :data:`SATURATION_TOL` unless the caller
says otherwise (the constant is declared on the catalog's floor,
:mod:`actlab.activations.regions`, where the catalog's plots read it too).  A strict ``<``: ReLU's negative side (``f' = 0``) is saturated for any tol > 0,
its positive side (``f' = max|f'|``) never.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from actlab.activations.regions import SATURATION_TOL
from actlab.probe.quantities.base import Field, Quantity, series_plot


def saturated(abs_d: Tensor, max_abs_derivative: float | Tensor, tol: float = SATURATION_TOL) -> Tensor:
    """Where ``|f'| < tol * max|f'|`` (bool, the shape of ``abs_d``).

    Args:
        abs_d: the magnitude of the activation's derivative, ``|f'(x)|``, at the
            pre-activations (:func:`actlab.probe.quantities.base.derivative`, then ``abs``).
        max_abs_derivative: ``max|f'|`` of the activation (``spec.max_abs_derivative``); a
            tensor broadcasting against ``d`` where the elements belong to different
            activations (the sweep engine's stacked models).
        tol: fraction of ``max|f'|``. Default: :data:`SATURATION_TOL`.
    """
    return torch.lt(abs_d, tol * max_abs_derivative)


def saturated_share(abs_d: Tensor, max_abs_derivative: float | Tensor, tol: float = SATURATION_TOL,
                    dims: Any = None) -> Tensor:
    """The fraction of elements of ``abs_d`` that are :func:`saturated` (over ``dims``; all by
    default).

    The comparison writes 0/1 in ``abs_d``'s floating dtype (on the 2-core CPU a bool mask and
    its mean ran ~6x slower than a float ``lt`` and a float mean); the mean is exact in float64
    and within float32 rounding otherwise.
    """
    s = torch.lt(abs_d, tol * max_abs_derivative, out=torch.empty_like(abs_d))
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
