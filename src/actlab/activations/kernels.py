"""Exact fused float32 CPU kernels (numba) for the activations whose torch kernels are NaN at +-inf.

torch's fused SiLU, GELU and Mish kernels (forward and ``*_backward``) give NaN at -inf
(``-inf * 0``), GELU's at +inf too, and GELU's overflows to inf for x > 1.7e38, where the catalog promises the
limits.  Made exact around torch's kernels, each call reads its input once more (a norm that
finds any inf, NaN or huge entry), and on these memory-bound ops that read costs about 1/6 of a
forward+backward.  The kernels here are exact for every input by construction, in the one pass
that reads the operands and writes the result:

* ``silu``: ``x sigmoid(x)``; the sigmoid and its complement as ``1 / (1 + e)`` and
  ``e / (1 + e)`` with ``e = exp(-|x|)`` (no overflow, no cancellation);
* ``gelu_tanh``: ``x sigmoid(2u)``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``, equal to
  ``x (1 + tanh u) / 2`` without its cancellation for negative x;
* ``gelu``: ``x Phi(x)`` with ``Phi(-|x|) = erfc(|x| / sqrt 2) / 2`` from Abramowitz & Stegun
  7.1.26 (the approximation torch's vectorised CPU erf uses: absolute error <= 7.5e-8 in Phi);
* ``mish``: ``x tanh(softplus(x))`` with ``tanh(softplus(x))`` as a ratio of sums of positive
  terms in ``e = exp(-|x|)`` (one exp, no log, no tanh; see ``mish_parts``);
* the derivatives (backward: ``grad * f'(x)``) from the same pieces.

Inputs are clamped where f and f' have reached their limits to the last float32 bit, so +-inf
give the limits and NaN gives NaN.  ``exp`` is Cody & Waite's reduction with Cephes' ``expf``
polynomial, scaled by two powers of two so that results underflow gradually, written out so that
LLVM vectorises the loop (numba's ``math.exp`` is a scalar libm call without Intel's SVML).
Against float64 they are within 4 float32 ulps of ``max(|f|, 1)`` everywhere a test draws, and
within one ulp of torch's own float32 kernels' error (the GELU forward is 3x more accurate: torch's
computes ``1 + erf``, which cancels for negative x).

They run for contiguous float32 CPU tensors of at least :data:`MIN_NUMEL` elements, outside
``torch.compile`` tracing, when numba is installed and ``ACTLAB_FUSED`` is not ``0``; the catalog
falls back to torch's kernels otherwise.  Large tensors are split over ``torch.get_num_threads()``
numba threads, one launch at a time, and never in a child forked after a launch (GNU OpenMP, one
of numba's threading layers, aborts there).  Compiled once, then cached on disk by numba.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from actlab._jit import load

SILU, GELU, GELU_TANH, MISH = 0, 1, 2, 3
KINDS = {"silu": SILU, "gelu": GELU, "gelu_tanh": GELU_TANH, "mish": MISH}

# Below this torch's kernel and its check (whose extra read then hits the cache) are faster: the
# kernels' launch (and their thread pool's wake-up) is not paid back on small tensors.  The
# crossover was measured for SiLU forward+backward; figures in benchmarks/activations.py.
MIN_NUMEL = 1 << 18

_jit: Any = None  # actlab.activations._kernels_jit, or False when numba is missing or disabled
_launch = threading.Lock()  # numba's workqueue layer must not be entered twice at once
_launch_pid: int | None = None  # the process that started numba's thread pool
_pool_layer: str | None = None  # numba's threading layer, once its pool has started


_TINY = np.zeros(32, np.float32)
_off = 0  # depth of :func:`disabled` blocks


@contextmanager
def disabled() -> Iterator[None]:
    """Inside the block the catalog runs torch's kernels (as ``ACTLAB_FUSED=0`` does for a whole
    process): the benchmark times both forms side by side with it."""
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def available() -> bool:
    """Whether the fused kernels can run here (numba importable, ``ACTLAB_FUSED`` not ``0``)."""
    return bool(_load())


def _load() -> Any:
    global _jit
    if _jit is None:
        _jit = load(lambda: importlib.import_module("actlab.activations._kernels_jit"))
    return _jit


def _wrapped(x: Tensor, g: Tensor | None) -> bool:
    # A torch.func transform's tensor (vmap's batched, grad's tracking one) has no memory to hand to numba.
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return wrapped(x) or (g is not None and wrapped(g))


def _fits(t: Tensor) -> bool:
    return t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous()


def usable(x: Tensor, g: Tensor | None = None) -> bool:
    """Whether :func:`forward` (or, given ``g``, :func:`backward`) takes these tensors.

    Not where torch runs on several threads but numba's pool is its ``workqueue`` layer (numba
    uses it when neither TBB nor a system GNU OpenMP is found): its threads then wait on torch's
    spinning OpenMP threads, and the fused kernels ran slower than torch's (figures:
    ``benchmarks/activations.py``).
    """
    if x.numel() < MIN_NUMEL or _off or torch.compiler.is_compiling() or _wrapped(x, g) or not _fits(x):
        return False
    if g is not None and (g.shape != x.shape or not _fits(g)):
        return False
    if not (_jit if _jit is not None else _load()):
        return False
    return torch.get_num_threads() == 1 or _pool_ok()


def _pool_ok() -> bool:
    """Whether numba's thread pool runs beside torch's (its layer is not ``workqueue``)."""
    if _pool_layer is None:
        if _launch_pid not in (None, os.getpid()):
            return True  # a forked child: it runs the kernels serially (see _run)
        with _launch:
            if _pool_layer is None:  # start the pool on a tiny input: then its layer is known
                _launch_parallel(_jit.forward_parallel, SILU, _TINY, _TINY.copy(), 2)
    return _pool_layer != "workqueue"


def _launch_parallel(kernel: Any, *args: Any) -> None:
    """Run a parallel kernel; the caller holds ``_launch``."""
    global _launch_pid, _pool_layer
    _launch_pid = os.getpid()
    kernel(*args)
    if _pool_layer is None:
        _pool_layer = _jit.numba.threading_layer()


def forward(kind: int, x: Tensor) -> Tensor:
    """``f(x)`` for the activation ``kind`` (:data:`SILU`, :data:`GELU`, :data:`GELU_TANH`).

    Args:
        kind: which activation.
        x: float32, contiguous, on the CPU (see :func:`usable`).

    Shape: the output has the shape of ``x``.
    """
    jit = _jit or _load()
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    xa, ya = x.detach().view(-1).numpy(), y.view(-1).numpy()
    _run(jit.forward_parallel, jit.forward, kind, xa, ya)
    return y


def backward(kind: int, g: Tensor, x: Tensor) -> Tensor:
    """``g * f'(x)`` for the activation ``kind``; ``g`` and ``x`` as :func:`usable` accepts them."""
    jit = _jit or _load()
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    arrays = (g.detach().view(-1).numpy(), x.detach().view(-1).numpy(), out.view(-1).numpy())
    _run(jit.backward_parallel, jit.backward, kind, *arrays)
    return out


def _run(parallel: Any, serial: Any, kind: int, *arrays: Any) -> None:
    threads = torch.get_num_threads()
    pid = os.getpid()
    if (threads > 1 and _launch_pid in (None, pid) and _pool_layer != "workqueue"
            and _launch.acquire(blocking=False)):
        try:
            _launch_parallel(parallel, kind, *arrays, threads)
        finally:
            _launch.release()
    else:
        serial(kind, *arrays)
