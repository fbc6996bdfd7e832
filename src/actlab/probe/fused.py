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
from actlab.probe.quantities.update_ratio import SAMPLE_RUN, UPDATE_SAMPLE, sample_starts
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
    from numba.core import types
    from numba.extending import intrinsic

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

    @jit
    def sumsq(a, zero):
        """Sum of squares of a 1-D contiguous array: in its dtype within blocks of 4096, in float64 across."""
        n = a.shape[0]
        full = n - n % 4096
        total = 0.0
        for c in range(0, full, 4096):
            r = zero
            blk = a[c:c + 4096]
            for i in range(4096):  # a constant trip count over a slice: the loop vectorises
                x = blk[i]
                r += x * x
            total += r
        r = zero
        for i in range(full, n):
            x = a[i]
            r += x * x
        return total + r

    @intrinsic
    def _at(typingctx, addr, like):
        """The address ``addr`` as a pointer to ``like``'s dtype."""
        ptr = types.CPointer(like.dtype)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(types.int64, like), codegen

    @jit
    def sumsq_many(addrs, lens, like, zero, out):
        """``out[k]``: ``sumsq`` of the ``lens[k]`` contiguous entries at ``addrs[k]`` (of ``like``'s dtype)."""
        for k in range(addrs.shape[0]):
            out[k] = sumsq(numba.carray(_at(addrs[k], like), (lens[k],)), zero)

    @jit
    def many(addrs, xaddrs, P, U, Q, modes, lo, hi, like, tiny, zero, sums, so, a_addrs, b_addrs,
             kinds, comps, A, B, roffs):
        """``last``/``count_last`` (``Q[k] == 0``: a (P, U) array) or ``mid`` (a (P, U, Q) array)
        over many arrays at ``addrs`` (of ``like``'s dtype) in one call: ``sums[so[k]]``,
        ``sums[so[k] + 1]`` their sum and sum of squares, and where the layer has saturated runs
        (``roffs[k] < roffs[k + 1]``: rows of the run tables) their count ``sums[so[k] + 2]``, on
        the array at ``xaddrs[k]`` (the input) when that is not 0; per-unit results at
        ``a_addrs[k]`` (counts or amax) and ``b_addrs[k]`` (amin), initialised here."""
        for k in range(addrs.shape[0]):
            mode = modes[k]
            ua = numba.carray(_at(a_addrs[k], like), (U[k] if mode == 1 or mode == 2 or mode == 4 else 1,))
            ub = numba.carray(_at(b_addrs[k], like), (U[k] if mode == 3 or mode == 4 else 1,))
            if mode == 1:
                ua[:] = zero
            if mode == 2 or mode == 4:
                ua[:] = -np.inf
            if mode == 3 or mode == 4:
                ub[:] = np.inf
            if Q[k] == 0:
                a = numba.carray(_at(addrs[k], like), (P[k], U[k]))
                if mode == 1:
                    s, ss = count_last(a, lo[k], hi[k], tiny, ua, zero)
                else:
                    s, ss = last(a, mode, lo[k], tiny, ua, ub, zero)
                if mode == 1 and s != s:  # a unit with a NaN output has a NaN count (see act_stats)
                    for i in range(P[k]):
                        for j in range(U[k]):
                            if a[i, j] != a[i, j]:
                                ua[j] = np.nan
            else:
                c = numba.carray(_at(addrs[k], like), (P[k], U[k], Q[k]))
                s, ss = mid(c, mode, lo[k], hi[k], tiny, ua, ub, zero)
                if mode == 1 and s != s:
                    for i in range(P[k]):
                        for j in range(U[k]):
                            for q in range(Q[k]):
                                if c[i, j, q] != c[i, j, q]:
                                    ua[j] = np.nan
            o = so[k]
            sums[o] = s
            sums[o + 1] = ss
            r0, r1 = roffs[k], roffs[k + 1]
            if r1 > r0:
                n = P[k] * U[k] * (Q[k] if Q[k] > 0 else 1)
                src = numba.carray(_at(xaddrs[k] if xaddrs[k] != 0 else addrs[k], like), (n,))
                sums[o + 2] = runs(src, kinds[r0:r1], comps[r0:r1], A[r0:r1], B[r0:r1])

    @jit
    def gather_many(addrs, starts, lens, roffs, like, out):
        """Runs ``roffs[k]:roffs[k + 1]`` of the flat array at ``addrs[k]`` (of ``like``'s dtype:
        ``lens[r]`` entries from ``starts[r]``), copied end to end into ``out``."""
        o = 0
        for k in range(addrs.shape[0]):
            last = roffs[k + 1] - 1
            src = numba.carray(_at(addrs[k], like), (starts[last] + lens[last],))
            for r in range(roffs[k], roffs[k + 1]):
                s0 = starts[r]
                for i in range(lens[r]):
                    out[o + i] = src[s0 + i]
                o += lens[r]

    @jit
    def moved_many(addrs, starts, lens, roffs, like, zero, before, out):
        """Per array k (its runs as in ``gather_many``): ``out[k]`` the sum of squares of
        (now - before) over its entries (the difference in the dtype, the sum in float64 across
        runs), ``out[K + k]`` that of ``before``."""
        K = addrs.shape[0]
        o = 0
        for k in range(K):
            last = roffs[k + 1] - 1
            src = numba.carray(_at(addrs[k], like), (starts[last] + lens[last],))
            d2 = 0.0
            w2 = 0.0
            for r in range(roffs[k], roffs[k + 1]):
                s0 = starts[r]
                rd = zero
                rw = zero
                for i in range(lens[r]):
                    w = before[o + i]
                    d = src[s0 + i] - w
                    rd += d * d
                    rw += w * w
                d2 += rd
                w2 += rw
                o += lens[r]
            out[k] = d2
            out[K + k] = w2

    return last, count_last, mid, runs, sumsq, sumsq_many, many, gather_many, moved_many


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


def sumsq(v: Tensor) -> float:
    """Sum of squares of ``v`` (see :func:`sums_usable`; no autograd history) in one read.

    A BLAS dot of ``v`` with itself reads it twice and, on the tensors the probe meets (a layer's
    output gradient, a weight's gradient), cost ~3x this loop on the CPU
    (``benchmarks/probe_overhead.py``).  Accumulated in the tensor's dtype within blocks of
    4096 entries, in float64 across them.
    """
    a = v.numpy().reshape(-1)
    return (_kernels or _load())[4](a, _plain_consts(a.dtype)[0])


def sumsq_many(ts: list[Tensor], out: np.ndarray) -> None:
    """``out[k] = sumsq(ts[k])`` for tensors that :func:`sums_usable` takes, all of one dtype, in
    one call: the gradients of a model's parameters at the end of backward (a call per tensor
    costs more than its loop on small layers).  The tensors must stay alive during the call."""
    k = (_kernels or _load())[5]
    n = len(ts)
    addrs = np.fromiter((t.data_ptr() for t in ts), np.int64, n)
    lens = np.fromiter((t.numel() for t in ts), np.int64, n)
    like = _plain_consts(_NP[ts[0].dtype])[1]
    k(addrs, lens, like, like.dtype.type(0), out)


def lane_usable(plan: StatPlan) -> bool:
    """Whether :func:`act_stats_many` takes the plan's layers (as :func:`usable` does, the input's
    layout aside)."""
    return plan.sat in ("never", "always", "runs")


def lane_consts(plan: StatPlan, dtype: torch.dtype, units: bool) -> tuple:
    """``(unit mode, lo, count_hi)`` of the plan for :func:`act_stats_many` (see :func:`_consts`)."""
    return _consts(plan, _NP[dtype], plan.unit_counts if units else None)[:3]


def lane_runs(plan: StatPlan, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plan's saturated-run table for :func:`act_stats_many` (kinds, complements, a, b)."""
    return _run_table(plan, _NP[dtype])


def act_stats_many(addrs: np.ndarray, xaddrs: np.ndarray, P: np.ndarray, U: np.ndarray, Q: np.ndarray,
                   modes: np.ndarray, lo: np.ndarray, hi: np.ndarray, sums: np.ndarray, so: np.ndarray,
                   a_addrs: np.ndarray, b_addrs: np.ndarray, table: tuple) -> None:
    """:func:`act_stats` of many layers in one call (the probe's end-of-forward on the CPU).

    Layer ``k``'s output is the C-contiguous ``(P[k], U[k])`` array at ``addrs[k]`` (units along
    the last axis, ``Q[k] = 0``; ``P = 1`` for no per-unit statistics) or ``(P[k], U[k], Q[k])``
    (units along the middle axis: channels), all of the dtype of ``lo``; ``modes[k]`` its unit mode
    (``U_COUNT`` ... ``U_BOTH``), ``lo``/``hi`` its bounds.  Writes the sum, the sum of squares and
    (for a layer with saturated runs) the saturated count to ``sums[so[k]:]`` (float64), the
    per-unit counts or amax to ``a_addrs[k]`` and the amin to ``b_addrs[k]`` (``U[k]`` entries each
    where the mode takes them).  ``table``: the run tables of all layers end to end (kinds,
    complements, a, b) and each layer's rows (``roffs``, ``len + 1`` offsets); the runs count on
    the input at ``xaddrs[k]`` where it is not 0.  Only plans that :func:`lane_usable` takes; every
    tensor must stay alive during the call.
    """
    like = _plain_consts(lo.dtype)[1]
    dt = lo.dtype.type
    kinds, comps, A, B, roffs = table
    (_kernels or _load())[6](addrs, xaddrs, P, U, Q, modes, lo, hi, like, dt(TINY), dt(0), sums, so, a_addrs,
                             b_addrs, kinds, comps, A, B, roffs)


def sample_plan(ts: list[Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """For :func:`take_samples` and :func:`moved`: the runs of each tensor's update-ratio sample
    (:func:`~actlab.probe.quantities.update_ratio.sample`), end to end: their starts, lengths,
    where each tensor's runs begin (``len(ts) + 1`` offsets), and the sample's total size."""
    starts, lens = [], []
    roffs = np.zeros(len(ts) + 1, np.int64)
    for k, t in enumerate(ts):
        n = t.numel()
        if n <= UPDATE_SAMPLE:
            starts.append(np.zeros(1, np.int64))
            lens.append(np.full(1, n, np.int64))
        else:
            st = sample_starts(n).numpy()
            starts.append(st)
            lens.append(np.full(len(st), SAMPLE_RUN, np.int64))
        roffs[k + 1] = roffs[k] + len(starts[-1])
    L = np.concatenate(lens) if lens else np.zeros(0, np.int64)
    return (np.concatenate(starts) if starts else np.zeros(0, np.int64)), L, roffs, int(L.sum())


def take_samples(ts: list[Tensor], plan: tuple, out: np.ndarray) -> None:
    """The update-ratio samples of ``ts`` (contiguous CPU tensors of ``out``'s dtype, none empty)
    copied end to end into ``out``, in one call."""
    addrs = np.fromiter((t.data_ptr() for t in ts), np.int64, len(ts))
    (_kernels or _load())[7](addrs, plan[0], plan[1], plan[2], out[:0], out)


def moved(ts: list[Tensor], plan: tuple, before: np.ndarray, out: np.ndarray) -> None:
    """``out[:K]``: per tensor, the sum of squares of its sample now minus ``before`` (as
    :func:`take_samples` wrote it); ``out[K:]``: that of ``before``.  One call."""
    addrs = np.fromiter((t.data_ptr() for t in ts), np.int64, len(ts))
    (_kernels or _load())[8](addrs, plan[0], plan[1], plan[2], before[:0], before.dtype.type(0), before, out)


_NP = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
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
    last, count_last, mid, runs = (_kernels or _load())[:4]
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


