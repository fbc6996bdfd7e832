"""Mean-field signal propagation for any elementwise catalog activation.

A fully connected layer ``u^{l+1} = W h^l + b``, ``h^l = f(u^l)``, with weights
``W_ij ~ N(0, sigma_w^2 / fan_in)`` and biases ``b_i ~ N(0, sigma_b^2)``, sends the variance
of a pre-activation through the *length map* (Poole et al. 2016)

.. math::
    q_{l+1} = \\sigma_w^2\\, \\mathbb{E}_z\\big[f(\\sqrt{q_l}\\, z)^2\\big] + \\sigma_b^2,
    \\qquad z \\sim N(0, 1),

and the squared norm of the gradient w.r.t. the pre-activations back by
``chi(q) = sigma_w^2 E[f'(sqrt(q) z)^2]`` per layer (Schoenholz et al. 2017).  At the fixed
point ``q*`` that is ``chi_1``: ``chi_1 < 1`` is the *ordered* phase (gradients vanish,
inputs become correlated), ``chi_1 > 1`` the *chaotic* phase (gradients explode, inputs
decorrelate), ``chi_1 = 1`` the *critical* line (the edge of chaos).

Every expectation uses :func:`actlab.activations.moments.gaussian_rule`, split at the
activation's kinks, so piecewise-linear functions are exact to rounding.  The correlation map
needs 2-D expectations ``E[g(u_1) g(u_2)]``: the outer variable uses the same rule, and the
inner one a Gauss-Legendre rule split, per outer node, where ``u_2`` crosses a kink.

Example::

    >>> from actlab.theory import analyse
    >>> mf = analyse("tanh", sigma_w2=1.5, sigma_b2=0.05)
    >>> round(mf.q_star, 5), round(mf.chi_1, 5), mf.phase
    (0.41804, 0.93864, 'ordered')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from scipy import optimize

from actlab.activations import ActivationSpec, get
from actlab.activations.moments import Z_MAX, _legendre, moments

__all__ = [
    "MeanField",
    "TheoryError",
    "analyse",
    "c_star",
    "check_depth",
    "chi",
    "chi_1",
    "correlation_map",
    "CRITICAL_SIGMA_B2",
    "critical_point",
    "critical_sigma_w2",
    "depth_scales",
    "gain",
    "gain_table",
    "gradient_profile",
    "length_map",
    "pair_expect",
    "phase",
    "q_star",
    "variance_profile",
]

CRITICAL_TOL = 1e-6
"""``|chi_1 - 1|`` below this counts as critical."""
Q_INF = 1e30
"""A fixed point above this is reported as ``inf`` (the variance grows without bound)."""
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
ONE_D_NODES = 48
"""Gauss-Legendre nodes per piece of the 1-D rule (error < 1e-11 against erf's closed forms, q in [1e-6, 1e10])."""
PAIR_NODES = 16
"""Nodes per piece in each dimension of the 2-D rule (error < 1e-10 against the erf and ReLU closed
forms for q in [0.01, 1e4] and every c)."""
# Besides the kinks, every rule is split at x = 0, +-1, +-4 (where catalog functions bend; for
# large q sigmoid-like functions are steep there) and at z = +-3, +-7 (where the Gaussian weight
# falls off), so a few nodes per piece reach 1e-11 for any q.
_X_BREAKS = (-4.0, -1.0, 0.0, 1.0, 4.0)
_Z_BREAKS = np.array([-7.0, -3.0, 3.0, 7.0])


class TheoryError(ValueError):
    """Input the theory cannot handle: a bad sigma, depth, or an activation without a usable derivative."""


# --------------------------------------------------------------------------- validation
def _check_sigmas(sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    try:
        sw, sb = float(sigma_w2), float(sigma_b2)
    except (TypeError, ValueError):
        raise TheoryError(f"sigma_w2 and sigma_b2 must be numbers, got {sigma_w2!r}, {sigma_b2!r}") from None
    if not (math.isfinite(sw) and sw > 0):
        raise TheoryError(f"sigma_w2 (weight variance x fan_in) must be finite and > 0, got {sigma_w2!r}")
    if not (math.isfinite(sb) and sb >= 0):
        raise TheoryError(f"sigma_b2 (bias variance) must be finite and >= 0, got {sigma_b2!r}")
    return sw, sb


def check_depth(depth: Any) -> int:
    """``depth`` as an int >= 1, or :class:`TheoryError` naming the value."""
    try:
        d = int(depth)
        ok = d == depth and d >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise TheoryError(f"depth must be a whole number >= 1, got {depth!r}")
    return d


def _rule(breaks: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gaussian_rule` built without Python loops or caching, for breaks that move with q
    (a cache would miss on every new q).  Same nodes and weights; a test holds them equal."""
    inner = breaks[(breaks > -Z_MAX) & (breaks < Z_MAX)]
    edges = np.sort(np.concatenate([[-Z_MAX, Z_MAX], inner]))
    edges = edges[np.concatenate([[True], np.diff(edges) > 0])]
    t, tw = _legendre(n)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    z = (mid[:, None] + half[:, None] * t).reshape(-1)
    w = (half[:, None] * tw).reshape(-1) * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z, w


class _Act:
    """An elementwise activation at fixed hyperparameters, with its Gaussian integrals."""

    def __init__(self, spec: ActivationSpec, params: Mapping[str, Any]):
        self.spec = spec
        self.params = dict(params)
        self.params["training"] = False
        self.kinks = tuple(float(k.x) for k in spec.kinks(self.params))
        # Per-instance cache (instances are themselves cached): fixed-point searches revisit q.
        self.one_d = lru_cache(maxsize=4096)(self._one_d)

    def public_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k != "training"}

    def fd(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.spec.forward(x, self.params)
        return y, self.spec.derivative(x, y, self.params)

    def breaks_x(self) -> np.ndarray:
        return np.asarray(sorted({*self.kinks, *_X_BREAKS}))

    def rule(self, q: float, n: int = ONE_D_NODES) -> tuple[np.ndarray, np.ndarray]:
        return _rule(np.concatenate([self.breaks_x() / math.sqrt(q), _Z_BREAKS]), n)

    def _one_d(self, q: float) -> tuple[float, float, float, float]:
        """``(E f^2, E f'^2, E[z f f'] / sqrt(q), E f)`` at ``x = sqrt(q) z``.

        The third is ``d E[f(sqrt(q) z)^2] / dq`` (Stein's lemma), the slope of the length map
        divided by sigma_w^2; it needs no second derivative.
        """
        if q <= 0:
            q = 1e-300  # the q -> 0+ limit: kinks at 0 keep their one-sided weights
        z, w = self.rule(q)
        s = math.sqrt(q)
        y, d = self.fd(torch.from_numpy(z * s))
        y, d = y.numpy(), d.numpy()
        return (
            float(w @ (y * y)),
            float(w @ (d * d)),
            float(w @ (z * y * d)) / s,
            float(w @ y),
        )


@lru_cache(maxsize=512)
def _act_cached(spec: ActivationSpec, items: tuple) -> _Act:
    return _Act(spec, dict(items))


def _act(activation: str | ActivationSpec, params: Mapping[str, Any]) -> _Act:
    spec = get(activation)
    if not spec.backprop:
        raise TheoryError(
            f"{spec.name!r} has no usable derivative (f' = 0 almost everywhere), so gradient propagation "
            "is not defined; mean-field theory needs an activation trained by backprop"
        )
    if not spec.elementwise:
        raise TheoryError(
            f"{spec.name!r} is not elementwise (it maps k inputs to one output); the 1-D mean-field "
            "theory here covers elementwise activations only"
        )
    p = spec.resolve(**{k: v for k, v in params.items() if k != "training"})
    items = tuple(sorted((k, float(v) if not isinstance(v, torch.Tensor) else float(v.flatten()[0]))
                         for k, v in p.items()))
    return _act_cached(spec, items)


# --------------------------------------------------------------------------- length map, chi
def length_map(activation: str | ActivationSpec, q: float, sigma_w2: float, sigma_b2: float = 0.0,
               **params: Any) -> float:
    """``sigma_w^2 E[f(sqrt(q) z)^2] + sigma_b^2``: the next layer's pre-activation variance.

    Example::

        >>> round(length_map("relu", 3.0, sigma_w2=2.0), 12)
        3.0
    """
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    return sw * _act(activation, params).one_d(_check_q(q))[0] + sb


def _check_q(q: float) -> float:
    q = float(q)
    if not (q >= 0 and math.isfinite(q)):
        raise TheoryError(f"variance q must be finite and >= 0, got {q!r}")
    return q


def chi(activation: str | ActivationSpec, q: float, sigma_w2: float, **params: Any) -> float:
    """``sigma_w^2 E[f'(sqrt(q) z)^2]``: the factor by which one layer at variance ``q`` scales
    the squared norm of the gradient w.r.t. the pre-activations (equal widths).

    Example::

        >>> round(chi("relu", 7.3, sigma_w2=2.0), 12)
        1.0
    """
    sw, _ = _check_sigmas(sigma_w2, 0.0)
    return sw * _act(activation, params).one_d(_check_q(q))[1]


def _q_star(a: _Act, sw: float, sb: float, q0: float) -> float:
    def g(q: float) -> float:
        return sw * a.one_d(q)[0] + sb - q

    q = q0
    for _ in range(4):
        gq = g(q)
        if abs(gq) <= 1e-14 * max(q, 1e-300):
            return q
        nq = q + gq
        if nq > Q_INF:
            break
        q = nq
    gq = g(q)
    if gq > 0:  # increasing: the fixed point lies above q
        lo, hi = q, 2 * q + 1e-300
        while g(hi) > 0:
            lo, hi = hi, hi * 1e3
            if hi > Q_INF:
                return math.inf
    else:  # decreasing: below q
        lo, hi = q / 10, q
        while g(lo) <= 0:
            hi, lo = lo, lo / 1e8
            if lo < 1e-250:
                return 0.0
    # Brackets can span many decades: solve in log q.
    t = optimize.brentq(lambda t: g(math.exp(t)), math.log(lo), math.log(hi), xtol=1e-15, rtol=1e-15, maxiter=200)
    return math.exp(t)


def q_star(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0,
           **params: Any) -> float:
    """Fixed point of the length map reached from input variance ``q0``.

    Returns ``inf`` where the variance grows without bound (ReLU with ``sigma_w^2 > 2``) and
    ``0.0`` where it collapses (tanh with ``sigma_w^2 <= 1, sigma_b^2 = 0``).  Where every
    ``q`` is fixed (ReLU at ``sigma_w^2 = 2, sigma_b^2 = 0``) it is ``q0``.

    Example::

        >>> round(q_star("tanh", 1.5, 0.05), 5)
        0.41804
    """
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    return _q_star(_act(activation, params), sw, sb, _check_q(q0))


def _eval_q(q: float) -> float:
    # chi at q* = inf is the large-q limit; 1e20 is far beyond any kink of the catalog.
    return 1e20 if math.isinf(q) else q


def chi_1(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0,
          **params: Any) -> float:
    """``chi_1 = sigma_w^2 E[f'(sqrt(q*) z)^2]`` at the fixed point ``q*``.

    Example::

        >>> round(chi_1("tanh", 1.5, 0.05), 5)
        0.93864
    """
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    a = _act(activation, params)
    return sw * a.one_d(_eval_q(_q_star(a, sw, sb, _check_q(q0))))[1]


def phase(chi1: float, tol: float = CRITICAL_TOL) -> str:
    """``"ordered"`` (chi_1 < 1), ``"critical"`` (within ``tol`` of 1) or ``"chaotic"``."""
    if abs(chi1 - 1.0) <= tol:
        return "critical"
    return "ordered" if chi1 < 1 else "chaotic"


# --------------------------------------------------------------------------- 2-D expectations
def _pair_expect(a: _Act, q: float, c: float, deriv: bool, n: int = PAIR_NODES) -> float:
    pick = 1 if deriv else 0
    s = math.sqrt(q)
    if c >= 1.0 - 1e-15:
        return a.one_d(q)[pick]
    pk = a.breaks_x()
    sc = math.sqrt((1.0 - c) * (1.0 + c))
    if abs(c) < 0.8:
        z1, w1 = a.rule(q, n)
    else:
        # Integrating z2 out smooths each break of g(u2) over a width sc / |c| in z1: split the
        # outer rule there too, or nearly-equal inputs (c -> 1) need thousands of nodes.
        soft = ((pk[:, None] / s + sc * np.array([-10.0, -4.0, -1.0, 1.0, 4.0, 10.0])) / c).reshape(-1)
        z1, w1 = _rule(np.concatenate([pk / s, _Z_BREAKS, soft]), n)
    if c <= -1.0 + 1e-15:
        v1 = a.fd(torch.from_numpy(s * z1))[pick].numpy()
        v2 = a.fd(torch.from_numpy(-s * z1))[pick].numpy()
        return float(w1 @ (v1 * v2))
    t, tw = _legendre(n)
    # u2 = sqrt(q)(c z1 + sc z2) crosses x = k at z2 = (k / s - c z1) / sc: a break per outer node.
    br = (pk[None, :] / s - c * z1[:, None]) / sc
    br = np.concatenate([br, np.broadcast_to(_Z_BREAKS, (len(z1), len(_Z_BREAKS)))], axis=1)
    br = np.sort(np.clip(br, -Z_MAX, Z_MAX), axis=1)
    lim = np.full((len(z1), 1), Z_MAX)
    edges = np.concatenate([-lim, br, lim], axis=1)
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    z2 = mid[..., None] + half[..., None] * t  # (outer nodes, pieces, n)
    w2 = half[..., None] * tw * np.exp(-0.5 * z2 * z2) * _INV_SQRT_2PI
    u2 = s * (c * z1[:, None, None] + sc * z2)
    g1 = a.fd(torch.from_numpy(s * z1))[pick].numpy()
    g2 = a.fd(torch.from_numpy(u2.reshape(-1)))[pick].numpy().reshape(u2.shape)
    inner = (w2 * g2).sum(axis=(1, 2))
    return float(w1 @ (g1 * inner))


def pair_expect(activation: str | ActivationSpec, q: float, c: float, derivative: bool = False,
                **params: Any) -> float:
    """``E[g(u_1) g(u_2)]`` with ``g = f`` (or ``f'``), ``u_1 = sqrt(q) z_1``,
    ``u_2 = sqrt(q) (c z_1 + sqrt(1 - c^2) z_2)``: two inputs of variance q and correlation c.

    Example::

        >>> import math
        >>> q = 0.7; c = 0.3
        >>> exact = 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))
        >>> abs(pair_expect("erf", q, c) - exact) < 1e-10
        True
    """
    c = float(c)
    if not -1.0 <= c <= 1.0:
        raise TheoryError(f"correlation c must be in [-1, 1], got {c!r}")
    return _pair_expect(_act(activation, params), _check_q(q), c, derivative)


def correlation_map(activation: str | ActivationSpec, c: float, sigma_w2: float, sigma_b2: float = 0.0,
                    q: float | None = None, **params: Any) -> float:
    """``(sigma_w^2 E[f(u_1) f(u_2)] + sigma_b^2) / q``: the next layer's correlation between two
    inputs whose pre-activations have variance ``q`` (default ``q*``) and correlation ``c``."""
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    a = _act(activation, params)
    if q is None:
        q = _q_star(a, sw, sb, 1.0)
    if not (0 < q < math.inf):
        raise TheoryError(f"the correlation map needs a finite q > 0, got q = {q!r}")
    c = float(c)
    if not -1.0 <= c <= 1.0:
        raise TheoryError(f"correlation c must be in [-1, 1], got {c!r}")
    return (sw * _pair_expect(a, q, c, False) + sb) / q


def _c_star(a: _Act, sw: float, sb: float, qs: float, chi1: float) -> float:
    if not (0 < qs < math.inf):
        return math.nan
    if chi1 <= 1 + CRITICAL_TOL:
        return 1.0  # ordered / critical: c = 1 is the stable fixed point

    def h(c: float) -> float:
        return (sw * _pair_expect(a, qs, c, False) + sb) / qs - c

    # On [0, 1] the map is convex (its derivatives are E[g(u1) g(u2)] >= 0 for c >= 0), equals 1 at
    # c = 1 with slope chi_1 > 1, and is >= 0 at c = 0: exactly one fixed point below 1.
    if h(0.0) <= 0:
        return 0.0
    hi = 1.0 - 1e-3
    while h(hi) >= 0:
        hi = 1.0 - (1.0 - hi) / 100
        if 1.0 - hi < 1e-13:
            return 1.0
    return optimize.brentq(h, 0.0, hi, xtol=1e-14, rtol=1e-14)


def c_star(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0, **params: Any) -> float:
    """Stable fixed point of the correlation map: 1 in the ordered phase, below 1 in the chaotic one
    (``nan`` where ``q*`` is 0 or infinite)."""
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    a = _act(activation, params)
    qs = _q_star(a, sw, sb, 1.0)
    return _c_star(a, sw, sb, qs, sw * a.one_d(_eval_q(qs))[1])


def _xi(slope: float) -> float:
    if not math.isfinite(slope):
        return math.nan
    if slope <= 0:
        return 0.0
    if slope >= 1:
        return math.inf
    return -1.0 / math.log(slope)


def depth_scales(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0,
                 **params: Any) -> tuple[float, float]:
    """``(xi_q, xi_c)``: the depths over which the variance and the correlation reach their fixed
    points, ``xi = -1 / log(slope of the map at its fixed point)`` (Schoenholz et al. 2017).
    ``xi_c`` diverges on the critical line, which is why only critical networks train very deep."""
    mf = analyse(activation, sigma_w2, sigma_b2, **params)
    return mf.xi_q, mf.xi_c


# --------------------------------------------------------------------------- the whole picture
@dataclass(frozen=True)
class MeanField:
    """Mean-field quantities of one activation at one (sigma_w^2, sigma_b^2).

    ``dq`` is the slope of the length map at q*, ``chi_c`` the slope of the correlation map at
    c*; ``grad_ratio`` is ``chi_1^(depth/2)``, the predicted ratio of gradient norms between the
    first and the last of ``depth`` layers at the fixed point.
    """

    activation: str
    params: dict
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi_1: float
    dq: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str
    critical_sigma_w2: float
    gain: float
    depth: int
    grad_ratio: float
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The fields as strict JSON data (NaN and +-inf as ``None``, :mod:`actlab._json`)."""
        from actlab._json import jsonable

        return jsonable(asdict(self))


def analyse(activation: str | ActivationSpec, sigma_w2: float = 1.0, sigma_b2: float = 0.0, depth: int = 20,
            q0: float = 1.0, **params: Any) -> MeanField:
    """Every mean-field quantity of ``activation`` at ``(sigma_w2, sigma_b2)``.

    Args:
        activation: catalog name or spec (elementwise, with a derivative).
        sigma_w2: weight variance times fan-in (``1`` is LeCun, ``2`` is He). Default: ``1.0``.
        sigma_b2: bias variance. Default: ``0.0``.
        depth: layers for ``grad_ratio``. Default: ``20``.
        q0: input pre-activation variance the length map starts from. Default: ``1.0``.
        **params: the activation's hyperparameters (``negative_slope=0.1``).

    Raises:
        TheoryError: ``sigma_w2 <= 0``, ``sigma_b2 < 0``, ``depth < 1``, or an activation without
            a derivative (step, sign) or not elementwise (maxout).
    """
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    depth = check_depth(depth)
    a = _act(activation, params)
    qs = _q_star(a, sw, sb, _check_q(q0))
    _, d2, dq, _ = a.one_d(_eval_q(qs))
    c1 = sw * d2
    notes = []
    if math.isinf(qs):
        notes.append("the pre-activation variance grows without bound (no finite q*); chi_1 is its large-q limit")
    if qs == 0.0:
        notes.append("the pre-activation variance collapses to 0 (q* = 0); chi_1 is its q -> 0 limit")
    cs = _c_star(a, sw, sb, qs, c1)
    if math.isnan(cs):
        chi_c = math.nan
    elif cs >= 1.0:
        chi_c = c1
    else:
        chi_c = sw * _pair_expect(a, qs, cs, True)
    try:
        crit = _critical(a, sb)
    except TheoryError:
        crit = math.nan
        notes.append(f"no sigma_w^2 in [1e-3, 1e4] puts chi_1 = 1 at sigma_b^2 = {sb:g}")
    try:
        ratio = c1 ** (depth / 2)
    except OverflowError:  # chi_1 > 1 over thousands of layers: beyond float range, not an error
        ratio = math.inf
    if math.isinf(ratio) and math.isfinite(c1):
        notes.append(f"chi_1^(depth/2) = {c1:.4g}^{depth / 2:g} overflows a float: the gradient ratio is "
                     "given as inf")
    return MeanField(
        activation=a.spec.name,
        params=a.public_params(),
        sigma_w2=sw,
        sigma_b2=sb,
        q_star=qs,
        chi_1=c1,
        dq=sw * dq,
        c_star=cs,
        chi_c=chi_c,
        xi_q=_xi(sw * dq),
        xi_c=_xi(chi_c),
        phase=phase(c1),
        critical_sigma_w2=crit,
        gain=_gain_of(a.spec, a.params),
        depth=depth,
        grad_ratio=ratio,
        notes=notes,
    )


def _critical(a: _Act, sb: float, lo: float = 1e-3, hi: float = 1e4) -> float:
    def g(log_sw: float) -> float:
        sw = math.exp(log_sw)
        return sw * a.one_d(_eval_q(_q_star(a, sw, sb, 1.0)))[1] - 1.0

    grid = np.linspace(math.log(lo), math.log(hi), 16)
    prev = g(grid[0])
    jumps = []
    for x0, x1 in itertools.pairwise(grid):
        cur = g(x1)
        if prev == 0:
            return math.exp(x0)
        if prev < 0 <= cur or prev > 0 >= cur:
            root = optimize.brentq(g, x0, x1, xtol=1e-13, rtol=1e-13, maxiter=400)
            # A sign change can be a jump, not a crossing: with sigma_b^2 = 0 the fixed point of
            # GELU-like functions switches from q* = 0 to q* = inf there, and chi_1 leaps over 1.
            if abs(g(root)) < 1e-6:
                return math.exp(root)
            jumps.append(math.exp(root))
        prev = cur
    why = (f"; chi_1 jumps over 1 at sigma_w2 = {jumps[0]:.6g} (q* switches between 0 and inf), "
           "so there is no edge of chaos, only a switch") if jumps else ""
    raise TheoryError(f"chi_1 does not cross 1 for sigma_w2 in [{lo:g}, {hi:g}] at sigma_b2 = {sb:g}{why}")


def critical_sigma_w2(activation: str | ActivationSpec, sigma_b2: float = 0.0, **params: Any) -> float:
    """The ``sigma_w^2`` at which ``chi_1 = 1`` for bias variance ``sigma_b2`` (the edge of chaos).

    Example::

        >>> round(critical_sigma_w2("relu", 0.1), 9)
        2.0
    """
    _, sb = _check_sigmas(1.0, sigma_b2)
    return _critical(_act(activation, params), sb)


CRITICAL_SIGMA_B2 = (0.0, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
"""The bias variances :func:`critical_point` tries, smallest first, for an edge of chaos."""


def critical_point(activation: str | ActivationSpec, sigma_b2: float | None = None, **params: Any
                   ) -> tuple[float, float]:
    """A point ``(sigma_w^2, sigma_b^2)`` on the edge of chaos (``chi_1 = 1``).

    With ``sigma_b2`` given, the critical ``sigma_w^2`` there (:func:`critical_sigma_w2`).  With
    ``None``: at ``sigma_b^2 = 0`` where the activation has an edge of chaos there (ReLU: (2, 0);
    tanh: (1, 0)), else at the smallest ``sigma_b^2`` of :data:`CRITICAL_SIGMA_B2` that has one.
    Some activations have none at ``sigma_b^2 = 0``: GELU's ``q*`` switches between 0 and inf
    as ``sigma_w^2`` grows, and ``chi_1`` jumps over 1 with it; a bias variance keeps ``q*``
    finite and away from 0, and the order-to-chaos line appears.

    Raises:
        TheoryError: no ``sigma_b^2`` tried (or the one given) has a ``sigma_w^2`` in
            ``[1e-3, 1e4]`` with ``chi_1 = 1``; the message says why.

    Example::

        >>> critical_point("relu")
        (2.0, 0.0)
    """
    if sigma_b2 is not None:
        return critical_sigma_w2(activation, sigma_b2, **params), float(sigma_b2)
    a = _act(activation, params)
    return _critical_point_cached(a)


@lru_cache(maxsize=256)
def _critical_point_cached(a: _Act) -> tuple[float, float]:
    try:
        return _critical(a, 0.0), 0.0
    except TheoryError as e:
        first = e
    # Which bias variances have an edge of chaos is taken to be monotone (a larger bias variance
    # keeps q* further from 0 and from inf): bisect the ladder, a few root searches instead of one
    # per entry (each costs seconds near the switch).
    lo, hi = 0, len(CRITICAL_SIGMA_B2)  # index lo fails; hi: the first known to succeed (len: none yet)
    found: tuple[float, float] | None = None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            found = _critical(a, CRITICAL_SIGMA_B2[mid]), CRITICAL_SIGMA_B2[mid]
            hi = mid
        except TheoryError:
            lo = mid
    if found is None or found[1] != CRITICAL_SIGMA_B2[hi if hi < len(CRITICAL_SIGMA_B2) else -1]:
        if hi == len(CRITICAL_SIGMA_B2):
            raise TheoryError(f"{first}; nor at any sigma_b2 up to {CRITICAL_SIGMA_B2[-1]:g}")
        found = _critical(a, CRITICAL_SIGMA_B2[hi]), CRITICAL_SIGMA_B2[hi]
    return found


# --------------------------------------------------------------------------- finite depth
def variance_profile(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0, depth: int = 20,
                     q_in: float = 1.0, **params: Any) -> np.ndarray:
    """Pre-activation variances ``q_1..q_L`` of a depth-``L`` MLP whose input has per-coordinate
    second moment ``q_in``: ``q_1 = sigma_w^2 q_in + sigma_b^2``, then the length map."""
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    depth = check_depth(depth)
    a = _act(activation, params)
    qs = [sw * _check_q(q_in) + sb]
    for _ in range(depth - 1):
        qs.append(sw * a.one_d(qs[-1])[0] + sb)
    return np.asarray(qs)


def gradient_profile(activation: str | ActivationSpec, sigma_w2: float, sigma_b2: float = 0.0, depth: int = 20,
                     q_in: float = 1.0, **params: Any) -> np.ndarray:
    """Predicted ``||dL/du^l|| / ||dL/du^{L+1}||`` for ``l = 1..L``: the gradient w.r.t. each hidden
    layer's pre-activations over the gradient at the network output ``u^{L+1} = W^{L+1} h^L``
    (a readout with the same init), using each layer's own variance ``q_l``:

    .. math::
        \\frac{\\|\\delta^l\\|}{\\|\\delta^{L+1}\\|} = \\prod_{k=l}^{L} \\sqrt{\\chi(q_k)},
        \\qquad \\chi(q) = \\sigma_w^2\\, E[f'(\\sqrt q z)^2],

    since ``delta^k = f'(u^k) * (W^{k+1 T} delta^{k+1})`` and ``||W^T v||^2 ~= sigma_w^2 ||v||^2``
    (square layers, or fan-out / fan-in times that otherwise).  At the fixed point this is
    ``chi_1^((L - l + 1) / 2)``.

    Example::

        >>> gradient_profile("relu", 1.0, depth=3).round(4).tolist()
        [0.3536, 0.5, 0.7071]
    """
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    a = _act(activation, params)
    qs = variance_profile(a.spec, sw, sb, depth, q_in, **a.public_params())
    per_layer = np.sqrt([sw * a.one_d(q)[1] for q in qs])
    return np.cumprod(per_layer[::-1])[::-1]


# --------------------------------------------------------------------------- gains
def _gain_of(spec: ActivationSpec, params: Mapping[str, Any]) -> float:
    p = {k: v for k, v in params.items() if k != "training"}
    m = moments(spec, p, 1.0)
    return 1.0 / math.sqrt(m.second) if m.second > 0 else math.inf


def gain(activation: str | ActivationSpec, **params: Any) -> float:
    """The forward-variance gain ``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1).

    Weights ``N(0, gain^2 / fan_in)`` and no bias keep the second moment of the pre-activations
    at 1 from layer to layer (``q = 1`` is a fixed point of the length map).  This is what
    ``torch.nn.init.calculate_gain`` aims at; it agrees for identity, ReLU and leaky ReLU.

    Example::

        >>> round(gain("relu") ** 2, 12)
        2.0
    """
    spec = get(activation)
    return _gain_of(spec, spec.resolve(**params))


def _torch_gain(spec: ActivationSpec, params: Mapping[str, Any]) -> float | None:
    # calculate_gain knows a handful of names; try the spec's name and aliases (identity's
    # alias "linear" is torch's name) rather than keep a second list here.
    for name in (spec.name, *spec.aliases):
        try:
            if name == "leaky_relu":
                return float(torch.nn.init.calculate_gain(name, params["negative_slope"]))
            return float(torch.nn.init.calculate_gain(name))
        except (ValueError, KeyError):
            continue
    return None


# Why torch's value differs, where it does: torch documents these choices, not a derivation.
_TORCH_WHY = {
    "sigmoid": "torch returns 1, a placeholder with no variance argument; sigmoid's outputs have mean 1/2 and "
               "E[f^2] = {e2:.4f}, so keeping the forward variance needs {ours:.4f}. Even then chi_1 = {chi:.3f} "
               "(f' <= 1/4): gradient norms shrink {shrink:.1f}x per layer. The edge of chaos is at gain "
               "{crit:.2f} (sigma_w^2 = {crit2:.0f}), far from any standard init.",
    "tanh": "torch's 5/3 is a heuristic with no derivation in its docs (users ask where it comes from, "
            "pytorch/pytorch#24991); the exact forward-variance gain is {ours:.4f}. 5/3 (sigma_w^2 = 2.78) puts tanh in the "
            "chaotic phase (chi_1 = {chi_torch:.3f}), a little past the edge of chaos.",
    "selu": "torch's 3/4 is deliberately not the self-normalising value: its docs say to use 'linear' (gain 1) "
            "for SNNs, and that 3/4 trades the normalising fixed point for more stable gradients in "
            "rectangular layers. Our {ours:.4f} is the SNN value: sigma_w^2 = 1 makes q* = 1.",
}


def gain_table() -> list[dict[str, Any]]:
    """One row per catalog activation (default hyperparameters): forward gain ``1/sqrt(E f(z)^2)``,
    backward gain ``1/sqrt(E f'(z)^2)`` (keeps the gradient norm at q = 1), the critical
    ``sqrt(sigma_w^2)`` at ``sigma_b^2 = 0``, torch's ``calculate_gain`` where it has one, a short
    ``note`` and, where torch differs, ``why``."""
    return [dict(r) for r in _gain_rows()]


@lru_cache(maxsize=1)
def _gain_rows() -> tuple[dict[str, Any], ...]:
    # The rows depend only on the catalog: computed once per process (a few seconds).
    from actlab.activations import specs

    rows = []
    for spec in specs():
        p = spec.defaults()
        ours = _gain_of(spec, p)
        row: dict[str, Any] = {"activation": spec.name, "gain": ours, "backward_gain": None,
                               "critical_gain": None, "torch_gain": _torch_gain(spec, p), "note": "", "why": ""}
        try:
            a = _act(spec, p)
            d2 = a.one_d(1.0)[1]
            row["backward_gain"] = 1.0 / math.sqrt(d2) if d2 > 0 else math.inf
            try:
                row["critical_gain"] = math.sqrt(_critical(a, 0.0))
            except TheoryError as e:
                row["critical_gain"] = None
                row["why"] = str(e)
        except TheoryError as e:
            row["note"] = "no theory: " + ("no derivative" if not spec.backprop else "not elementwise")
            row["why"] = str(e)
        tg = row["torch_gain"]
        if tg is not None:
            if abs(tg - ours) <= 1e-9 * ours:
                row["note"] = "same (exact)"
                row["why"] = "torch's value is the exact forward-variance gain"
            elif spec.name in _TORCH_WHY:
                a = _act(spec, p)
                row["note"] = f"torch {100 * (tg / ours - 1):+.1f}%"
                chi_ours = ours**2 * a.one_d(_eval_q(_q_star(a, ours**2, 0.0, 1.0)))[1]
                crit = row["critical_gain"] or math.nan
                row["why"] = _TORCH_WHY[spec.name].format(
                    ours=ours, e2=a.one_d(1.0)[0], chi=chi_ours, shrink=1 / math.sqrt(chi_ours), crit=crit,
                    crit2=crit**2, chi_torch=chi_1(spec, tg**2))
            else:
                row["note"] = f"torch {100 * (tg / ours - 1):+.1f}%"
        rows.append(row)
    return tuple(rows)
