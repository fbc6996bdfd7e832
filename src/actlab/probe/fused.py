"""One pass over an activation tensor for all of the probe's per-step statistics (CPU, numba).

The eager form of the statistics (:mod:`actlab.probe.stats`) is three or four torch kernels per
activation tensor: a ``sum``, a dot for the sum of squares, and the float-only counts (a clamp into
a buffer and a per-unit sum).  On the CPU each kernel costs its dispatch and its own read of the
tensor, several times what one numba loop costs that reads each element once and keeps every
statistic in registers (``benchmarks/probe_overhead.py`` measures the probe with and without it:
``fused=False``).

This module gives that loop for float32 and float64 tensors on the CPU when ``numba`` is
installed; everything else (CUDA, half dtypes, strided views, generic saturation plans that
evaluate the derivative, tracing under ``torch.compile``) keeps the eager kernels.  Both forms
give the same numbers (a test holds them equal); the fused sums are accumulated per row in the
tensor's dtype, then in float64.

Semantics are the eager ones:

* per-unit counts are ``count(lo < y < count_hi) * TINY`` (see :meth:`StatPlan.unit_count`),
  NaN for a unit with a NaN output (the eager clamp-and-sum's NaN: such a unit is not called dead);
* per-unit ``amax``/``amin`` propagate NaN, as torch's do;
* the saturated count is ``sum over runs`` of the run's count (:class:`~actlab.probe.stats.Count`),
  NaN when the tensor it counts on holds a NaN (as the eager ``clamp(...).sum()`` is);
* one difference: per-unit counts of values below ``TINY`` (subnormal float32 outputs) are exact
  here, where the eager clamp counts them only fractionally.

The kernels compile on first use (about a second) and are cached on disk by numba.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from actlab._jit import load
from actlab.probe.stats import TINY, StatPlan

# Unit statistics, one code each (the numba kernels branch on it outside their inner loops).
U_NONE, U_COUNT, U_MAX, U_MIN, U_BOTH = 0, 1, 2, 3, 4
# Run kinds: t = v - a (plain), a - v (neg), |v - a| - b (abs); "complement" counts not(t > 0).
R_PLAIN, R_NEG, R_ABS = 0, 1, 2

_kernels: Any = None  # the compiled functions, or False when numba is missing or disabled


def available() -> bool:
    """Whether the fused CPU kernels can run here (numba importable, not disabled by ``ACTLAB_FUSED=0``)."""
    return bool(_load())


def _load() -> Any:
    global _kernels
    if _kernels is None:
        _kernels = load(_build)
    return _kernels


def _build() -> Any:
    import numba

    # Reassociation lets the reductions vectorise; no nnan/ninf, so NaN and inf keep their meaning.
    fm = {"reassoc", "contract", "nsz", "arcp"}
    jit = numba.njit(cache=True, nogil=True, fastmath=fm, boundscheck=False, error_model="numpy")

    @jit
    def last(a, mode, lo, tiny, ua, ub, zero):
        """a: (P, U) C-contiguous, units along the last axis (per-unit counts: ``count_last``)."""
        P, U = a.shape
        s = 0.0
        ss = 0.0
        for i in range(P):
            row = a[i]
            rs = zero
            rq = zero
            if mode == 2:
                for j in range(U):
                    x = row[j]
                    rs += x
                    rq += x * x
                    m = ua[j]
                    ua[j] = x if (x > m or x != x) else m
            elif mode == 3:
                for j in range(U):
                    x = row[j]
                    rs += x
                    rq += x * x
                    m = ub[j]
                    ub[j] = x if (x < m or x != x) else m
            elif mode == 4:
                for j in range(U):
                    x = row[j]
                    rs += x
                    rq += x * x
                    m = ua[j]
                    ua[j] = x if (x > m or x != x) else m
                    m = ub[j]
                    ub[j] = x if (x < m or x != x) else m
            else:
                for j in range(U):
                    x = row[j]
                    rs += x
                    rq += x * x
            s += rs
            ss += rq
        return s, ss

    @jit
    def count_last(a, lo, hi, tiny, ua, zero):
        """``last`` for per-unit counts of ``lo < x < hi`` alone (the common case): a simpler loop, faster."""
        P, U = a.shape
        s = 0.0
        ss = 0.0
        for i in range(P):
            row = a[i]
            rs = zero
            rq = zero
            for j in range(U):
                x = row[j]
                rs += x
                rq += x * x
                ua[j] += tiny if (x > lo and not x >= hi) else zero
            s += rs
            ss += rq
        return s, ss

    @jit
    def mid(a, mode, lo, hi, tiny, ua, ub, zero):
        """a: (P, U, Q) C-contiguous, units along the middle axis (channels of N, C, ...)."""
        P, U, Q = a.shape
        s = 0.0
        ss = 0.0
        for i in range(P):
            for j in range(U):
                span = a[i, j]
                rs = zero
                rq = zero
                c = zero
                mx = ua[j] if mode == 2 or mode == 4 else zero
                mn = ub[j] if mode == 3 or mode == 4 else zero
                if mode == 1:
                    for k in range(Q):
                        x = span[k]
                        rs += x
                        rq += x * x
                        c += tiny if (x > lo and not x >= hi) else zero
                    ua[j] += c
                elif mode == 0:
                    for k in range(Q):
                        x = span[k]
                        rs += x
                        rq += x * x
                else:
                    for k in range(Q):
                        x = span[k]
                        rs += x
                        rq += x * x
                        mx = x if (x > mx or x != x) else mx
                        mn = x if (x < mn or x != x) else mn
                    if mode == 2 or mode == 4:
                        ua[j] = mx
                    if mode == 3 or mode == 4:
                        ub[j] = mn
                s += rs
                ss += rq
        return s, ss

    @jit
    def runs(v, kinds, comps, A, B):
        """Saturated count: the sum over runs r of count(t_r > 0), or of its complement; NaN if v has a NaN."""
        n = v.shape[0]
        total = 0.0
        bad = 0
        for r in range(kinds.shape[0]):
            kind = kinds[r]
            a = A[r]
            b = B[r]
            c = 0
            if kind == 0:
                for i in range(n):
                    c += 1 if v[i] - a > 0 else 0
            elif kind == 1:
                for i in range(n):
                    c += 1 if a - v[i] > 0 else 0
            else:
                for i in range(n):
                    c += 1 if abs(v[i] - a) - b > 0 else 0
            total += (n - c) if comps[r] else c
        if kinds.shape[0]:
            for i in range(n):
                bad += 1 if v[i] != v[i] else 0
        return np.nan if bad else total

    return last, count_last, mid, runs


def _cached(plan: StatPlan, key: tuple, make: Any) -> Any:
    """``make()``, kept on the (frozen, lru-cached) plan under ``key``."""
    cache = plan.__dict__.setdefault("_fused", {})
    value = cache.get(key)
    if value is None:
        value = cache[key] = make()
    return value


def _run_table(plan: StatPlan, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Bounds in the tensor's dtype: the eager ``torch.sub(v, a)`` rounds a to it as well.
    return _cached(plan, ("runs", dtype.char), lambda: _make_run_table(plan, dtype))


def _make_run_table(plan: StatPlan, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    kinds, comps, A, B = [], [], [], []
    for r in plan.runs:
        if r.form == "eq":
            kinds.append(R_PLAIN if r.b > 0 else R_NEG)
            comps.append(True)
        elif r.form == "gt":
            kinds.append(R_PLAIN)
            comps.append(False)
        elif r.form == "lt":
            kinds.append(R_NEG)
            comps.append(False)
        else:  # "out": |v - a| > b; "in": its complement
            kinds.append(R_ABS)
            comps.append(r.form == "in")
        A.append(r.a)
        B.append(r.b)
    return (np.array(kinds, np.int64), np.array(comps, np.bool_), np.array(A, dtype), np.array(B, dtype))


def _mode(plan: StatPlan, counted: bool) -> int:
    if counted:
        return U_COUNT
    return {"max": U_MAX, "min": U_MIN, "both": U_BOTH}.get(plan.dead, U_NONE)


def usable(plan: StatPlan, v: Tensor, x: Any) -> bool:
    """Whether :func:`act_stats` can take this call (else the caller uses the eager kernels)."""
    if plan.sat not in ("runs", "never", "always"):
        return False
    if plan.sat == "runs" and plan.domain == "input" and not (
            isinstance(x, Tensor) and x.dtype == v.dtype and x.shape == v.shape and x.is_contiguous()
            and x.device.type == "cpu"):
        return False
    return _runs_on(v)


def sums_usable(v: Tensor) -> bool:
    """Whether :func:`sums` can take ``v`` (a contiguous float32/float64 CPU tensor, numba here)."""
    return v.numel() > 0 and _runs_on(v)


def _runs_on(v: Tensor) -> bool:
    """A contiguous float32/float64 CPU tensor, not under tracing, with the kernels compiled here."""
    if v.device.type != "cpu" or v.dtype not in (torch.float32, torch.float64) or not v.is_contiguous():
        return False
    if torch.compiler.is_compiling():
        return False
    return bool(_kernels if _kernels is not None else _load())


def sums(v: Tensor) -> tuple[float, float]:
    """``(sum, sum of squares)`` of ``v`` in one read (see :func:`sums_usable`): the eager form
    reads the tensor twice, a sum and a dot.  Rows along the last axis are accumulated in the
    tensor's dtype, then in float64, as :func:`act_stats` does."""
    last = (_kernels or _load())[0]
    a = v.detach().numpy()
    zero, empty = _plain_consts(a.dtype)
    return last(a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(1, -1), U_NONE, zero, zero, empty, empty, zero)


_PLAIN: dict[str, tuple] = {}


def _plain_consts(dtype: np.dtype) -> tuple:
    c = _PLAIN.get(dtype.char)
    if c is None:
        c = _PLAIN[dtype.char] = (dtype.type(0), np.zeros(1, dtype))
    return c


def act_stats(plan: StatPlan, v: Tensor, x: Any, counted: bool, unit_shape: tuple[int, ...] | None
              ) -> tuple[float, float, float | None, Tensor | None, Tensor | None]:
    """``(sum, sum of squares, saturated count or None, per-unit a, per-unit b)`` of ``v`` in one pass.

    Args:
        plan: the activation's :class:`StatPlan`.
        v: the activation output (float32/float64, contiguous, on the CPU).
        x: its input (read only when the plan's saturated runs are intervals of the input).
        counted: take per-unit ``count(lo < v < count_hi) * TINY`` (:attr:`StatPlan.unit_counts`
            plans) instead of amax/amin.
        unit_shape: ``(P, U)`` (units along the last axis) or ``(P, U, Q)`` (units along the
            middle axis); ``None``: no per-unit statistics.

    Per-unit results are fresh tensors (the probe keeps them until its next flush); ``a`` holds
    the counts or ``amax``, ``b`` the ``amin`` (``None`` where not taken).
    """
    last, count_last, mid, runs = _kernels or _load()
    a = v.detach().numpy()
    mode, lo, hi, tiny, zero, empty = _consts(plan, a.dtype, counted if unit_shape is not None else None)
    ua = ub = None
    if unit_shape is None:
        s, ss = last(a.reshape(1, -1), U_NONE, lo, tiny, empty, empty, zero)
    else:
        view = a.reshape(unit_shape)
        if mode == U_COUNT:
            ua = np.zeros(unit_shape[1], a.dtype)
            if view.ndim == 2:
                s, ss = count_last(view, lo, hi, tiny, ua, zero)
            else:
                s, ss = mid(view, mode, lo, hi, tiny, ua, empty, zero)
            if s != s:  # a NaN somewhere (or inf - inf): its units' counts are NaN, as the eager sum's
                ua[np.isnan(view).any(axis=0 if view.ndim == 2 else (0, 2))] = np.nan
        else:
            if mode in (U_MAX, U_BOTH):
                ua = np.full(unit_shape[1], -np.inf, a.dtype)
            if mode in (U_MIN, U_BOTH):
                ub = np.full(unit_shape[1], np.inf, a.dtype)
            # numba needs an array in every slot; the unused ones are never read
            if view.ndim == 3:
                s, ss = mid(view, mode, lo, hi, tiny, empty if ua is None else ua, empty if ub is None else ub, zero)
            else:
                s, ss = last(view, mode, lo, tiny, empty if ua is None else ua, empty if ub is None else ub, zero)
    sat: float | None = None
    if plan.sat == "runs" and not (counted and plan.counts_saturation):
        src = a if plan.domain == "output" else x.detach().numpy()
        sat = runs(src.reshape(-1), *_run_table(plan, a.dtype))
    return (s, ss, sat, None if ua is None else torch.from_numpy(ua), None if ub is None else torch.from_numpy(ub))


def _consts(plan: StatPlan, dtype: np.dtype, counted: bool | None) -> tuple:
    """(unit mode, lo, count_hi, TINY, 0, a 1-element placeholder) in ``dtype``, cached on the plan."""
    dt = dtype.type
    return _cached(plan, ("consts", dtype.char, counted), lambda: (
        U_NONE if counted is None else _mode(plan, counted), dt(plan.lo if math.isfinite(plan.lo) else 0.0),
        # no upper bound: NaN, as ``not x >= NaN`` holds for every x (an infinite ReLU output is alive)
        dt(plan.count_hi if plan.dead == "ends" else math.nan), dt(TINY), dt(0), np.zeros(1, dtype)))


