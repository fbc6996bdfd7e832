"""On-device statistics of one activation tensor, planned once per activation.

The probe judges saturation by each layer's own derivative with the one rule of
:mod:`actlab.probe.quantities.saturated`: a (sample, unit) is saturated when
``|f'(z)| < saturation * max|f'|``; this module is the fast implementation of that quantity (and
of the inactive and dead units), and a test holds it equal to the plain reductions.  Evaluating ``f'`` on every activation tensor would
cost several kernels a layer (GELU's derivative alone is eight), so a :class:`StatPlan` works
out, once per (activation, hyperparameters), *where* in the domain the derivative is below the
threshold: a few intervals of the output ``y`` (for output-based derivatives such as sigmoid's
``y (1 - y)``) or of the input ``x``.  Counting the elements in those intervals takes only
float comparisons, which on CPU are several times cheaper than boolean masks and
``count_nonzero`` (``benchmarks/probe_overhead.py`` measures the probe's cost).

Inactive units need "f' is exactly 0 for every sample" (:func:`actlab.activations.regions.inactive_units`).
For output-based derivatives the zero set is a set of points in ``y`` (ReLU: ``y = 0``; tanh and
hardtanh: ``y = +-1``; ReLU6: ``y = 0`` and ``y = 6``).  Where those points are the ends of the
output range, a unit is inactive on a batch when no output lies strictly inside the range: one
per-unit count of ``lo < y < hi`` (of ``y > lo`` for ReLU), a vectorised float kernel.  A unit at
0 on some samples and at 6 on the others passes no gradient either, so it counts.  Only an
activation with a zero of f' inside its range would need the per-unit ``amax == amin`` test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from actlab.activations.spec import ActivationSpec
from actlab.probe.quantities.saturated import SATURATION_TOL, saturated, saturating_side

# count(t > 0) = clamp(t, 0, TINY).sum() / TINY (see _count).
TINY = 2.0 ** -100
_GRID = 50_001


@dataclass(frozen=True)
class Count:
    """``count(v in run)`` for one saturated run of the domain.

    ``form``: ``"eq"`` (v == a, a the end of the range), ``"lt"`` (v < a), ``"gt"`` (v > a),
    ``"out"`` (|v - a| > b: everything outside a band, used when the non-saturated set is one
    bounded interval), ``"in"`` (|v - a| <= b).  For ``"eq"``, ``b`` is 1 when ``a`` is the
    bottom of the output range and -1 when it is the top.
    """

    form: Literal["eq", "lt", "gt", "out", "in"]
    a: float
    b: float = 0.0


@dataclass(frozen=True)
class StatPlan:
    """How to measure saturation and dead units for one activation and hyperparameters.

    Attributes:
        spec: the activation.
        domain: ``"output"`` or ``"input"``: which tensor the saturated runs are intervals of.
        sat: ``"never"``, ``"always"``, ``"runs"`` (sum of :attr:`runs`), ``"generic"``
            (evaluate the derivative; learnable or random hyperparameters) or ``"none"``
            (not measured: non-elementwise activations such as maxout).
        runs: the saturated parts of the domain.
        dead: ``"max"`` (dead iff amax == lo), ``"min"`` (amin == hi), ``"ends"`` (f' is 0 at both ends
            of the output range and nowhere inside: dead iff no output lies strictly inside it, e.g.
            a ReLU6 or hardtanh unit at either end on every sample), ``"both"`` (amax == amin
            and f'(amax) == 0), or ``"none"`` (not measured: derivative reads the input).
        lo, hi: the output range.
        threshold: ``saturation * spec.max_abs_derivative``.
    """

    spec: ActivationSpec
    params: tuple[tuple[str, Any], ...]
    domain: Literal["input", "output"]
    sat: Literal["never", "always", "runs", "generic", "none"]
    runs: tuple[Count, ...] = ()
    dead: Literal["max", "min", "ends", "both", "none"] = "none"
    lo: float = -math.inf
    hi: float = math.inf
    threshold: float = 0.0
    p: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # ReLU-like (``counts_saturation``): the only saturated point is the bottom of the range
        # and it is also the only zero of f'.  Then one per-unit count of ``y > lo`` gives both
        # the saturated fraction and the dead units (count 0), in two kernels.
        counts_saturation = (self.sat == "runs" and len(self.runs) == 1 and self.runs[0].form == "eq"
                             and self.runs[0].b > 0 and self.dead == "max" and self.runs[0].a == self.lo)
        object.__setattr__(self, "counts_saturation", counts_saturation)
        # Dead iff amax == lo is dead iff count(y > lo) == 0: the count is one vectorised kernel
        # where a NaN-propagating per-unit max is not (ReLU, whose zero side is inactive, not
        # saturated, takes this path with no saturated count).
        object.__setattr__(self, "unit_counts", counts_saturation or self.dead == "ends" or (
            self.sat == "never" and self.dead == "max" and math.isfinite(self.lo)))
        # the per-unit counts are of lo < y < count_hi
        object.__setattr__(self, "count_hi", self.hi if self.dead == "ends" else math.inf)
        object.__setattr__(self, "needs_input", self.sat == "generic" or (self.sat == "runs" and self.domain == "input"))

    def unit_count(self, y: Tensor, dims: int | tuple[int, ...], ws: "Workspace") -> Tensor:
        """Per unit, ``count(lo < y < count_hi) * TINY`` (exact for counts below 2^24)."""
        if y.dtype == torch.float16:
            y = y.float()
        buf = ws(y)
        if self.dead == "ends":  # count(min(y - lo, hi - y) > 0)
            t = torch.sub(y, self.lo, out=buf)
            t = torch.minimum(t, torch.sub(self.hi, y), out=buf).clamp_(0, TINY)
        else:
            t = torch.clamp(y, 0, TINY, out=buf) if self.lo == 0 else torch.sub(y, self.lo, out=buf).clamp_(0, TINY)
        return t.sum(dims)


    # --------------------------------------------------------------- hot path
    def saturated_count(self, x: Tensor | None, y: Tensor, ws: "Workspace") -> tuple[list[Tensor], list[float], float]:
        """Tensors ``t_i`` and host numbers ``c_i``, ``k`` with ``saturated = k + sum(c_i * t_i)``.

        Nothing is synced; the caller stacks the tensors of every layer in one call.
        """
        n = float(y.numel())
        if self.sat == "runs":
            v = y if self.domain == "output" else x
            if v is None:
                return [], [], math.nan
            if v.dtype == torch.float16:  # TINY underflows in half precision
                v = v.float()
            ts, cs, k = [], [], 0.0
            buf = ws(v)
            for r in self.runs:
                t, c, kk = _count(v, r, n, buf)
                ts.append(t)
                cs.append(c)
                k += kk
            return ts, cs, k
        if self.sat == "never":
            return [], [], 0.0
        if self.sat == "always":
            return [], [], n
        if self.sat == "generic" and x is not None:
            d = self.spec.derivative(x, y, self.p).abs()
            side = saturating_side(self.spec, x, y, self.p)
            if side is not None:  # off a saturating side: |f'| raised to the threshold, not counted
                d = torch.where(side, d, torch.full_like(d, self.threshold))
            # count(|f'| < thr) = count(thr - |f'| > 0)
            return [d.neg_().add_(self.threshold).clamp_(0, TINY).sum()], [1.0 / TINY], 0.0
        return [], [], math.nan

    def dead_mask(self, amax: Tensor | None, amin: Tensor | None) -> Tensor:
        """Units with f' = 0 on every sample of the batch (bool, one per unit).

        For :attr:`unit_counts` plans ``amax`` holds the per-unit counts instead.
        """
        if self.unit_counts:
            return amax == 0
        if self.dead == "max":
            return amax == self.lo
        if self.dead == "min":
            return amin == self.hi
        d = self.spec.derivative(amax, amax, self.p)
        return (amax == amin) & (d == 0)


def _count(v: Tensor, r: Count, n: float, ws: Tensor) -> tuple[Tensor, float, float]:
    # count(t > 0) for t >= 0 is clamp(t, 0, TINY).sum() / TINY: float kernels only, exact for
    # t >= TINY (a power of two, so the sum of up to 2^24 of them is exact in float32).  The
    # element-wise steps write into ``ws``, a reused buffer: a fresh activation-sized tensor
    # per step page-faults, which cost far more than the clamp itself in a training loop.
    if r.form == "eq":
        # a is the bottom (b = 1) or the top (b = -1) of the range: count(v == a) = n - count(v != a)
        if r.b > 0:
            t = torch.clamp(v, 0, TINY, out=ws) if r.a == 0 else torch.sub(v, r.a, out=ws).clamp_(0, TINY)
        else:
            t = torch.sub(v, r.a, out=ws).neg_().clamp_(0, TINY)
        return t.sum(), -1.0 / TINY, n
    if r.form == "gt":
        return torch.sub(v, r.a, out=ws).clamp_(0, TINY).sum(), 1.0 / TINY, 0.0
    if r.form == "lt":
        return torch.sub(v, r.a, out=ws).neg_().clamp_(0, TINY).sum(), 1.0 / TINY, 0.0
    t = torch.sub(v, r.a, out=ws).abs_() if r.a != 0 else torch.abs(v, out=ws)
    if r.form == "out":
        return t.sub_(r.b).clamp_(0, TINY).sum(), 1.0 / TINY, 0.0
    # "in": a <= v <= b written as |v - c| <= h
    return t.sub_(r.b).clamp_(0, TINY).sum(), -1.0 / TINY, n


class Workspace:
    """One reusable buffer per (shape, dtype, device), shared by every layer in turn."""

    def __init__(self) -> None:
        self._bufs: dict[tuple, Tensor] = {}

    def __call__(self, v: Tensor) -> Tensor:
        key = (v.shape, v.dtype, v.device)
        buf = self._bufs.get(key)
        if buf is None:
            if len(self._bufs) > 32:  # shapes keep changing (variable sequence length): start over
                self._bufs.clear()
            buf = self._bufs[key] = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        return buf


# ------------------------------------------------------------------ planning
def _key(params: dict) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v) for k, v in params.items() if k != "training"))


def plan_for(spec: ActivationSpec, params: dict | None = None, saturation: float = SATURATION_TOL) -> StatPlan:
    """The :class:`StatPlan` of ``spec`` at ``params`` (cached for numeric hyperparameters)."""
    p = dict(spec.defaults())
    p.update(params or {})
    if any(isinstance(v, Tensor) for v in p.values()):
        return _plan_generic(spec, p, saturation)
    try:
        return _plan_cached(spec, _key(p), float(saturation))
    except TypeError:  # unhashable hyperparameter value
        return _plan_generic(spec, p, saturation)


def _plan_generic(spec: ActivationSpec, p: dict, saturation: float) -> StatPlan:
    p = {**p, "training": False}
    lo, hi = _range(spec, p)
    sat = "generic" if spec.elementwise and spec.backprop else ("always" if not spec.backprop else "none")
    return StatPlan(spec, (), "input", sat, lo=lo, hi=hi,
                    threshold=saturation * spec.max_abs_derivative, p=p)


def _range(spec: ActivationSpec, p: dict) -> tuple[float, float]:
    try:
        lo, hi = spec.output_range(p)
        return float(lo), float(hi)
    except Exception:  # learnable parameters as tensors
        return -math.inf, math.inf


@lru_cache(maxsize=256)
def _plan_cached(spec: ActivationSpec, key: tuple, saturation: float) -> StatPlan:
    p = dict(key)
    p["training"] = False
    thr = saturation * spec.max_abs_derivative
    lo, hi = _range(spec, p)
    if not spec.elementwise:
        return StatPlan(spec, key, "output", "none", lo=lo, hi=hi, threshold=thr, p=p)
    if not spec.backprop:
        return StatPlan(spec, key, "output", "always", lo=lo, hi=hi, threshold=thr, p=p)
    # RReLU samples its slope in training, so the derivative depends on both x and y.
    domain = "output" if spec.derivative_from == "output" else "input"
    if spec.derivative_from == "both":
        return StatPlan(spec, key, "input", "generic", lo=lo, hi=hi, threshold=thr, p=p)
    grid, d = _derivative_on_grid(spec, p, domain, lo, hi)
    runs = _saturated_runs(spec, p, domain, grid, _sat(spec, d, saturation), saturation)
    if runs is not None:
        runs = _on_sides(spec, p, domain, runs)
    if runs is None:
        sat, runs = "generic", ()
    elif not runs:
        sat = "never"
    elif len(runs) == 1 and runs[0].form == "in" and runs[0].a - runs[0].b <= grid[0] and runs[0].a + runs[0].b >= grid[-1]:
        sat, runs = "always", ()
    else:
        sat = "runs"
    dead = "none"
    if domain == "output":
        zero_lo = math.isfinite(lo) and _deriv_at(spec, p, lo) == 0
        zero_hi = math.isfinite(hi) and _deriv_at(spec, p, hi) == 0
        inner = grid[(grid > lo) & (grid < hi)]
        interior_zero = bool(np.any(_deriv(spec, p, inner, domain) == 0))
        if interior_zero:
            dead = "both"
        elif zero_lo and zero_hi:
            dead = "ends"
        elif zero_lo:
            dead = "max"
        elif zero_hi:
            dead = "min"
    return StatPlan(spec, key, domain, sat, tuple(runs), dead, lo, hi, thr, p)


def _deriv(spec: ActivationSpec, p: dict, v: np.ndarray, domain: str) -> np.ndarray:
    t = torch.as_tensor(np.asarray(v, dtype=np.float64))
    with torch.no_grad():
        if domain == "output":
            d = spec.derivative(t, t, p)
        else:
            d = spec.derivative(t, spec.forward(t, p), p)
    return np.asarray(d.to(torch.float64).expand_as(t).numpy(), dtype=np.float64)


def _deriv_at(spec: ActivationSpec, p: dict, v: float) -> float:
    return float(_deriv(spec, p, np.array([v]), "output")[0])


def _derivative_on_grid(spec, p, domain, lo, hi):
    if domain == "output":
        a = lo if math.isfinite(lo) else -1e4
        b = hi if math.isfinite(hi) else 1e4
    else:
        a, b = -60.0, 60.0
    grid = np.unique(np.concatenate([np.linspace(a, b, _GRID), np.linspace(max(a, -10), min(b, 10), _GRID)]))
    return grid, _deriv(spec, p, grid, domain)


def _saturated_runs(spec, p, domain, grid, sat, saturation) -> list[Count] | None:
    """Turn the saturated grid points into :class:`Count` runs (None: too irregular)."""
    if not sat.any():
        return []
    change = np.nonzero(sat[1:] != sat[:-1])[0]
    if len(change) > 6:
        return None
    bounds = [_bisect(spec, p, domain, grid[i], grid[i + 1], bool(sat[i]), saturation) for i in change]
    # runs between consecutive boundaries; the first and last extend to the grid ends
    edges = [grid[0], *bounds, grid[-1]]
    states = [bool(sat[0])]
    for _ in change:
        states.append(not states[-1])
    runs: list[tuple[float, float]] = [(edges[i], edges[i + 1]) for i, s in enumerate(states) if s]
    first_open = not (domain == "output" and grid[0] == _finite_or(spec, p, 0))
    last_open = not (domain == "output" and grid[-1] == _finite_or(spec, p, 1))
    lo_end, hi_end = grid[0], grid[-1]
    out: list[Count] = []
    nonsat = [(edges[i], edges[i + 1]) for i, s in enumerate(states) if not s]
    # Non-saturated set is one bounded interval: count everything outside it in one go.
    if len(nonsat) == 1 and states[0] and states[-1]:
        a, b = nonsat[0]
        c, h = (a + b) / 2, (b - a) / 2
        return [Count("out", float(c), float(h * (1 - 1e-6)))]
    for a, b in runs:
        at_lo, at_hi = a == lo_end, b == hi_end
        if at_lo and at_hi:
            return [Count("in", (a + b) / 2, math.inf)]
        if at_lo:
            if not first_open and b - a < 1e-9:
                out.append(Count("eq", float(a), 1.0))
            else:
                out.append(Count("lt", float(b)))
        elif at_hi:
            if not last_open and b - a < 1e-9:
                out.append(Count("eq", float(b), -1.0))
            else:
                out.append(Count("gt", float(a)))
        else:
            out.append(Count("in", float((a + b) / 2), float((b - a) / 2)))
    return out


def _on_sides(spec: ActivationSpec, p: dict, domain: str, runs: list[Count]) -> list[Count] | None:
    """The runs on the sides ``spec.saturates`` declares (:func:`saturating_side`: left of 0 in
    the input, of f(0) in the output); None where a run straddles the centre (generic plan)."""
    side = spec.saturates
    if side == "both":
        return runs
    if side == "none":
        return []
    c = 0.0 if domain == "input" else float(spec.forward(torch.zeros((), dtype=torch.float64), p))
    left, right = [], []
    for r in runs:
        if r.form == "eq":  # the bottom of the range (b > 0) is the left end, the top the right
            (left if r.b > 0 else right).append(r)
        elif r.form == "lt" and r.a <= c:
            left.append(r)
        elif r.form == "gt" and r.a >= c:
            right.append(r)
        elif r.form == "out" and r.a - r.b <= c <= r.a + r.b:
            left.append(Count("lt", r.a - r.b))
            right.append(Count("gt", r.a + r.b))
        elif r.form == "in" and r.a + r.b < c:
            left.append(r)
        elif r.form == "in" and r.a - r.b > c:
            right.append(r)
        else:
            return None
    return left if side == "left" else right


def _finite_or(spec, p, i):
    v = _range(spec, p)[i]
    return v if math.isfinite(v) else None


def _sat(spec: ActivationSpec, d: np.ndarray, saturation: float) -> np.ndarray:
    """The saturation rule on derivative values (numpy in, numpy out)."""
    return saturated(torch.as_tensor(d).abs(), spec.max_abs_derivative, saturation).numpy()


def _bisect(spec, p, domain, a, b, sat_a, saturation, iters=80) -> float:
    """The boundary between a (status sat_a) and b (the other status)."""
    for _ in range(iters):
        m = (a + b) / 2
        if m == a or m == b:
            break
        s = bool(_sat(spec, _deriv(spec, p, np.array([m]), domain), saturation)[0])
        if s == sat_a:
            a = m
        else:
            b = m
    # A run that is a single end point (ReLU's y = 0) keeps that exact point.
    return a if sat_a else b
