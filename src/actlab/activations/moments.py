"""Gaussian expectations of an activation and its derivative, exact for piecewise functions.

``E[g(sqrt(q) z)]`` for z ~ N(0, 1) is computed by Gauss-Legendre quadrature on
``[-Z, Z]`` split at the activation's kinks (mapped to ``x / sqrt(q)``), so each piece is
smooth and the rule converges exponentially; piecewise-linear functions come out exact to
rounding.  The tail beyond ``|z| = Z`` (``Z = 13``) weighs less than 1e-38.  The theory
module (:mod:`actlab.theory`) builds on these same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch

Params = Mapping[str, Any]
"""Hyperparameter values by name (floats, or tensors for learnable ones)."""


class SpecLike(Protocol):
    """What this module reads of an :class:`actlab.activations.spec.ActivationSpec`.

    A protocol rather than an import: the spec builds its property sheet (moments, max |f'|)
    on this module, which therefore sits below it and must not import it back.
    """

    @property
    def name(self) -> str: ...
    @property
    def elementwise(self) -> bool: ...
    @property
    def moments_override(self) -> Callable[[Params], tuple[float, float]] | None: ...
    def forward(self, x: torch.Tensor, p: Params) -> torch.Tensor: ...
    def derivative(self, x: torch.Tensor, y: torch.Tensor, p: Params) -> torch.Tensor: ...
    def kinks(self, p: Params) -> tuple[Any, ...]: ...
    def defaults(self) -> dict[str, Any]: ...
    def group_size(self, p: Params | None = None) -> int: ...

Z_MAX = 13.0
NODES_PER_PIECE = 160
SCALE_BREAKS = (0.0, -2.0, 2.0, -6.0, 6.0)
"""Points in x where :func:`expect` always splits, besides the kinks.  Activations bend within
a few units of x = 0 (and ELU, CELU and softsign are C1 but not C2 at 0, with no declared kink),
which at large q is a sliver of z: without these splits E[erf(sqrt(q) z)^2] was 3.6e-2 off at
q = 100 and ELU's mean 2e-6 off at q = 1; with them both are within 2e-14 up to q = 1e4."""


@lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


@lru_cache(maxsize=1024)
def gaussian_rule(breaks: tuple[float, ...] = (), n: int = NODES_PER_PIECE) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` and weights ``w`` with ``sum(w * g(z)) ~= E[g(z)]``, z ~ N(0, 1).

    Args:
        breaks: points in z where the integrand is not smooth; pieces are split there.
        n: Gauss-Legendre nodes per piece.
    """
    edges = sorted({-Z_MAX, Z_MAX, *(b for b in breaks if -Z_MAX < b < Z_MAX)})
    t, tw = _legendre(n)
    zs, ws = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        z = mid + half * t
        zs.append(z)
        ws.append(half * tw * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    z, w = np.concatenate(zs), np.concatenate(ws)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def expect(
    fn: Callable[[torch.Tensor], torch.Tensor], q: float = 1.0, kinks: Sequence[float] = (), n: int = NODES_PER_PIECE
) -> float:
    """``E[fn(sqrt(q) z)]`` for z ~ N(0, 1), with ``fn`` non-smooth at ``kinks`` (in x).

    Example::

        >>> from actlab.activations import get
        >>> relu = get("relu")
        >>> round(expect(lambda x: relu.forward(x, {}) ** 2, q=2.0), 12)
        1.0
    """
    if q < 0 or not math.isfinite(q):
        raise ValueError(f"variance q must be finite and >= 0, got {q!r}")
    if q == 0:
        return float(fn(torch.zeros(1, dtype=torch.float64))[0])
    s = math.sqrt(q)
    z, w = gaussian_rule(tuple(round(k / s, 15) for k in (*kinks, *SCALE_BREAKS)), n)
    x = torch.from_numpy(z * s)
    return float(np.dot(w, fn(x).numpy()))


@dataclass(frozen=True)
class Moments:
    """Gaussian moments of f and f' at input variance ``q``."""

    mean: float  # E[f(sqrt(q) z)]
    second: float  # E[f(sqrt(q) z)^2]
    dmean: float  # E[f'(sqrt(q) z)]
    dsecond: float  # E[f'(sqrt(q) z)^2]
    q: float = 1.0


def kink_points(spec: SpecLike, p: Params) -> list[float]:
    return [k.x for k in spec.kinks(p)]


def fns(spec: SpecLike, p: Params | None = None) -> tuple[Callable, Callable]:
    """``f`` and ``f'`` as float64 tensor functions at params ``p`` (defaults when None)."""
    pp = dict(spec.defaults() if p is None else p)
    pp.setdefault("training", False)

    def f(x: torch.Tensor) -> torch.Tensor:
        return spec.forward(x, pp)

    def df(x: torch.Tensor) -> torch.Tensor:
        y = spec.forward(x, pp)
        return spec.derivative(x, y, pp)

    return f, df


def moments(spec: SpecLike, p: Params | None = None, q: float = 1.0) -> Moments:
    """E[f], E[f^2], E[f'], E[f'^2] under x ~ N(0, q).

    For maxout (not elementwise) the declared ``moments_override`` gives E[f] and E[f^2];
    its derivative moments are 1/k and 1/k (each input is selected with probability 1/k).
    """
    pp = spec.defaults() if p is None else dict(p)
    if not spec.elementwise:
        if spec.moments_override is None:
            raise ValueError(f"{spec.name!r} is not elementwise and declares no moments")
        m1, m2 = spec.moments_override(pp)
        k = float(spec.group_size(pp))
        return Moments(m1 * math.sqrt(q), m2 * q, 1 / k, 1 / k, q)
    f, df = fns(spec, pp)
    kinks = kink_points(spec, pp)
    return Moments(
        mean=expect(f, q, kinks),
        second=expect(lambda x: f(x) ** 2, q, kinks),
        dmean=expect(df, q, kinks),
        dsecond=expect(lambda x: df(x) ** 2, q, kinks),
        q=q,
    )


def max_abs_derivative(spec: SpecLike, p: Params | None = None) -> float:
    """``sup |f'|`` on [-50, 50] (grid of 2e5 points, refined by golden-section search)."""
    if not spec.elementwise:
        return 1.0
    pp = spec.defaults() if p is None else dict(p)
    _, df = fns(spec, pp)
    kinks = set(kink_points(spec, pp))
    x = torch.linspace(-50, 50, 200_001, dtype=torch.float64)
    if kinks:
        mask = torch.ones_like(x, dtype=torch.bool)
        for k in kinks:
            mask &= (x - k).abs() > 1e-9
        x = x[mask]
    d = df(x).abs()
    i = int(torch.argmax(d))
    best = float(d[i])
    # Refine the peak of smooth functions (GELU, SiLU, Mish peak between grid points).
    lo, hi = float(x[max(i - 1, 0)]), float(x[min(i + 1, len(x) - 1)])
    if not any(lo <= k <= hi for k in kinks):
        g = (math.sqrt(5) - 1) / 2
        a, b = lo, hi
        for _ in range(60):
            c, e = b - g * (b - a), a + g * (b - a)
            vc = float(df(torch.tensor([c], dtype=torch.float64)).abs())
            ve = float(df(torch.tensor([e], dtype=torch.float64)).abs())
            if vc > ve:
                b = e
            else:
                a = c
        best = max(best, float(df(torch.tensor([(a + b) / 2], dtype=torch.float64)).abs()))
    # The sup can be a one-sided limit at a kink (SELU: lambda alpha just left of 0), which
    # no grid point reaches.
    for k in spec.kinks(pp):
        if -50 <= k.x <= 50:
            best = max(best, abs(k.left), abs(k.right))
    return best
