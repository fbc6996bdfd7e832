"""Exact duplicate rows of a weight matrix in one numba call: the CPU path of
:func:`~actlab.probe.quantities.identical_units.identical_units` (``ACTLAB_FUSED=0`` or no numba:
the torch path there, with the same numbers).

Measured each ``update`` period on every layer, the torch path (a sort of the first column, then
``unique(dim=0)`` over the candidate rows) costs a dozen dispatches per layer, and ten times that on a
layer whose random first weights happen to repeat (``benchmarks/probe_overhead.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actlab._jit import load

_kernel: Any = None


def _build() -> Any:
    import numba

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def same(w, b, has_b, r, s):
        if has_b and not b[r] == b[s]:
            return False
        for k in range(w.shape[1]):
            if not w[r, k] == w[s, k]:
                return False
        return True

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def duplicate_rows(w, b, has_b):
        """Number of rows of ``w`` (with their ``b``) equal, value by value, to another row."""
        n = w.shape[0]
        first = np.empty(n, w.dtype)
        for i in range(n):
            first[i] = w[i, 0]
        order = np.argsort(first)  # rows that differ in their first weight cannot be equal
        dup = np.zeros(n, np.bool_)
        i = 0
        while i < n:
            j = i + 1
            while j < n and first[order[j]] == first[order[i]]:
                j += 1
            for p in range(i, j - 1):
                r = order[p]
                if dup[r]:  # already matched to an earlier row, which was compared with all of the run
                    continue
                for q in range(p + 1, j):
                    s = order[q]
                    if not dup[s] and same(w, b, has_b, r, s):
                        dup[r] = True
                        dup[s] = True
            i = j
        return dup.sum()

    return duplicate_rows


def available() -> bool:
    """Whether numba is here and not turned off (``ACTLAB_FUSED=0``)."""
    global _kernel
    if _kernel is None:
        _kernel = load(_build)
    return bool(_kernel)


def duplicate_rows(w: np.ndarray, b: np.ndarray | None) -> int:
    """Rows of the 2-D ``w`` (with their entry of ``b``, when given) equal to another row, by ``==``
    (so ``-0.0 == 0.0``, and a row with a NaN equals none).  Needs :func:`available`."""
    if b is None:
        return int(_kernel(w, w[:0, 0], False))
    return int(_kernel(w, b, True))
