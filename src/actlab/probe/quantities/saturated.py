"""Saturated share: the fraction of (sample, unit) where the layer's own activation is flat on
a side where it saturates.

The vocabulary (one meaning each): a unit is *inactive* on a step when ``f' = 0`` for every
sample (:mod:`.inactive`), *dead* when inactive over a window (:mod:`.dead`); a (sample, unit) is
*saturated* when the activation is flat there while the unit still carries a signal: the
activation has levelled off at a bound on a side that its spec declares saturating
(``spec.saturates``: sigmoid and tanh both sides, ReLU6 and hard sigmoid above their upper kink,
ELU and GELU on the left).  A rectifier's zero side (ReLU, and ReLU6 and hard sigmoid below their
lower kink: ``f = 0`` and ``f' = 0`` on a half-line) is not saturation: a unit there is off, as
the inactive and dead quantities count; about half of any ReLU layer sits there by design.

The one saturation rule: a (sample, unit) is saturated when ``|f'(x)| < tol * max|f'|`` and it lies
on a saturating side (:func:`saturating_side`), with f the layer's activation from the catalog
and ``tol`` = :data:`SATURATION_TOL` unless the caller says otherwise (the constant is declared
on the catalog's floor, :mod:`actlab.activations.regions`, where the catalog's plots read it
too).  A strict ``<``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import Tensor

from actlab.activations.regions import SATURATION_TOL
from actlab.probe.quantities.base import Field, Quantity, series_plot

if TYPE_CHECKING:  # pragma: no cover
    from actlab.activations.spec import ActivationSpec


def saturating_side(spec: "ActivationSpec", x: Tensor | None, y: Tensor | None,
                    p: Mapping[str, Any] | None = None) -> Tensor | None:
    """Where the elements lie on a side the activation saturates on (bool), or ``None`` when every
    element may (``spec.saturates == "both"``).

    The left side is ``x < 0``, the right ``x > 0``; with only the output ``y`` (specs whose
    derivative reads the output, all monotone) it is ``y < f(0)`` or ``y > f(0)``.  Off the sides
    a flat stretch (GELU's f' crossing zero near x = -0.75 is on its left) would still count: the
    rule is ``|f'|`` small *and* on a saturating side.

    Args:
        spec: the activation.
        x: its input (pre-activation), or ``None``.
        y: its output, read when ``x`` is ``None``.
        p: its hyperparameters (defaults where missing).
    """
    side = spec.saturates
    if side == "both":
        return None
    v = x if x is not None else y
    if v is None:
        raise ValueError("saturating_side needs the activation's input x or its output y, got neither")
    if side == "none":
        return torch.zeros_like(v, dtype=torch.bool)
    c = 0.0
    if x is None:
        params = {**spec.defaults(), **dict(p or {}), "training": False}
        c = float(spec.forward(torch.zeros((), dtype=torch.float64), params))
    return torch.lt(v, c) if side == "left" else torch.gt(v, c)


def saturated(abs_d: Tensor, max_abs_derivative: float | Tensor, tol: float = SATURATION_TOL,
              side: Tensor | None = None) -> Tensor:
    """Where ``|f'| < tol * max|f'|`` on a saturating side (bool, the shape of ``abs_d``).

    Args:
        abs_d: the magnitude of the activation's derivative, ``|f'(x)|``, at the
            pre-activations (:func:`actlab.probe.quantities.base.derivative`, then ``abs``).
        max_abs_derivative: ``max|f'|`` of the activation (``spec.max_abs_derivative``); a
            tensor broadcasting against ``d`` where the elements belong to different
            activations (the sweep engine's stacked models).
        tol: fraction of ``max|f'|``. Default: :data:`SATURATION_TOL`.
        side: :func:`saturating_side` of the same elements (``None``: all of them).
    """
    s = torch.lt(abs_d, tol * max_abs_derivative)
    return s if side is None else s & side


def saturated_share(abs_d: Tensor, max_abs_derivative: float | Tensor, tol: float = SATURATION_TOL,
                    dims: Any = None, side: Tensor | None = None) -> Tensor:
    """The fraction of elements of ``abs_d`` that are :func:`saturated` (over ``dims``; all by
    default); ``side`` as there.

    The comparison writes 0/1 in ``abs_d``'s floating dtype (on the CPU a bool mask and its mean
    run several times slower than a float ``lt`` and a float mean); the mean is exact in float64
    and within float32 rounding otherwise.
    """
    s = torch.lt(abs_d, tol * max_abs_derivative, out=torch.empty_like(abs_d))
    if side is not None:
        # through uint8: a float-by-bool product is not vectorised on CPU, uint8's is (the same 0/1)
        s.mul_(side.view(torch.uint8) if side.dtype == torch.bool else side)
    return s.mean() if dims is None else s.mean(dims)


QUANTITY = Quantity(
    order=20,
    key="saturated",
    doc="fraction of (sample, unit) of an activation layer with |f'| < tol * max|f'| on a side it saturates on",
    schedule="step",
    target="activation",
    fields=(Field("saturated", "fraction of (sample, unit) with |f'(x)| < tol * max|f'| on a side the activation "
                           "saturates on (spec.saturates; not a rectifier's zero side) (tol: Probe(saturation=...))"),),
    reduce=saturated_share,
    plot=series_plot("saturated", "saturated (sample, unit), %", percent=True),
)
