"""The numba source of :mod:`actlab.activations.kernels` (imported only when numba is installed).

Everything the kernels read is a module global, so numba's on-disk cache (``cache=True``) keys
them on this file alone and reloads them in later processes instead of compiling again.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

f32 = np.float32


@intrinsic
def times_pow2(typingctx, p, k):
    """``p * 2^n`` for ``k = n + 1.5 * 2^23`` (float32), in two factors so that it underflows gradually.

    Written in LLVM IR so that the exponent arithmetic stays in 32-bit lanes (numba's own integer
    arithmetic widens to 64 bits, half as many lanes per vector)."""
    if p != types.float32 or k != types.float32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        n = builder.sub(builder.bitcast(args[1], i32), ir.Constant(i32, 0x4B400000))
        n1 = builder.ashr(n, ir.Constant(i32, 1))
        n2 = builder.sub(n, n1)
        out = args[0]
        for m in (n1, n2):
            bits = builder.shl(builder.add(m, ir.Constant(i32, 127)), ir.Constant(i32, 23))
            out = builder.fmul(out, builder.bitcast(bits, ir.FloatType()))
        return out

    return types.float32(p, k), codegen


log2e = f32(1 / math.log(2))
ln2_hi = f32(0.693359375)  # few mantissa bits: n * ln2_hi is exact (Cody & Waite)
ln2_lo = f32(math.log(2) - 0.693359375)
magic = f32(1.5 * 2**23)  # adding it rounds to an integer, left in the low mantissa bits
exp_clamp = f32(104.0)  # exp(-104) < 2^-150 rounds to 0 in float32
one, zero, half = f32(1.0), f32(0.0), f32(0.5)
# Beyond +-104 (+-30 for GELU) f(x) is 0 or x, and f'(x) 0 or 1, to the last float32 bit, so
# inputs are clamped there: +-inf then give the limits instead of inf * 0 = NaN.  NaN passes.
lo_clamp, hi_clamp = f32(-104.0), f32(104.0)
gelu_lo, gelu_hi = f32(-30.0), f32(30.0)
inv_sqrt2 = f32(1 / math.sqrt(2))
inv_sqrt_2pi = f32(1 / math.sqrt(2 * math.pi))
# Abramowitz & Stegun 7.1.26
as_p = f32(0.3275911)
a1, a2, a3, a4, a5 = (f32(0.254829592), f32(-0.284496736), f32(1.421413741), f32(-1.453152027),
                      f32(1.061405429))


two_c = f32(2 * math.sqrt(2 / math.pi))  # GELU-tanh's 2u = two_c (x + k3 x^3)
k3 = f32(0.044715)
k3x3 = f32(3 * 0.044715)

inline = numba.njit(inline="always", fastmath={"contract"}, error_model="numpy")
jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False, error_model="numpy")


@inline
def exp_neg(a):
    """exp(-a) for a >= 0 (NaN and a > 104 give 0); within 1 ulp, gradual underflow."""
    a = a if a <= exp_clamp else exp_clamp
    k = (-a) * log2e + magic
    nf = k - magic
    r = nf * (-ln2_hi) - a
    r = nf * (-ln2_lo) + r
    p = f32(1.9875691500e-4)
    p = p * r + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    p = p * (r * r) + r + one
    return times_pow2(p, k)  # k = n + magic, n in [-150, 0]


@inline
def sigmoid_pair(w):
    """(sigmoid(w), 1 - sigmoid(w)), each without cancellation or overflow."""
    e = exp_neg(abs(w))
    r = one / (one + e)
    er = e * r
    pos = w >= zero
    return (r if pos else er), (er if pos else r)


@inline
def phi_pair(x):
    """(Phi(x), exp(-x^2 / 2)) for |x| <= 30; Phi(-|x|) = erfc(|x| / sqrt 2) / 2 by A&S 7.1.26."""
    z = abs(x) * inv_sqrt2
    t = one / (as_p * z + one)
    q = a5
    q = q * t + a4
    q = q * t + a3
    q = q * t + a2
    q = q * t + a1
    g = exp_neg(z * z)
    h = half * t * q * g
    return (h if x < zero else one - h), g


@inline
def lower(v, lo):
    return lo if v < lo else v  # NaN stays NaN


@inline
def clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@jit
def silu(x, y):
    for i in range(x.size):
        v = lower(x[i], lo_clamp)
        y[i] = v * sigmoid_pair(v)[0]


@jit
def silu_grad(g, x, out):
    # f' = s (1 + x (1 - s))
    for i in range(x.size):
        v = clamp(x[i], lo_clamp, hi_clamp)
        s, c = sigmoid_pair(v)
        out[i] = g[i] * (s * (one + v * c))


@jit
def gelu(x, y):
    for i in range(x.size):
        v = lower(x[i], gelu_lo)
        y[i] = v * phi_pair(v)[0]


@jit
def gelu_grad(g, x, out):
    # f' = Phi(x) + x phi(x)
    for i in range(x.size):
        v = clamp(x[i], gelu_lo, gelu_hi)
        cdf, e = phi_pair(v)
        out[i] = g[i] * (cdf + v * (e * inv_sqrt_2pi))


@jit
def gelu_tanh(x, y):
    # x (1 + tanh u) / 2 = x sigmoid(2u)
    for i in range(x.size):
        v = lower(x[i], lo_clamp)
        y[i] = v * sigmoid_pair(two_c * v * (one + k3 * v * v))[0]


@jit
def gelu_tanh_grad(g, x, out):
    # f' = s + x s (1 - s) (2u)'
    for i in range(x.size):
        v = clamp(x[i], lo_clamp, hi_clamp)
        v2 = v * v
        s, c = sigmoid_pair(two_c * v * (one + k3 * v2))
        out[i] = g[i] * (s * (one + v * c * (two_c * (one + k3x3 * v2))))


two, four = f32(2.0), f32(4.0)


@inline
def mish_parts(v):
    """(n, d, m) with tanh(softplus(v)) = n / d and (1 - tanh^2) sigmoid(v) = 4 m / d^2.

    With e = exp(-|v|): tanh(log(1 + e^v)) = (e^2v + 2 e^v) / (e^2v + 2 e^v + 2), which is
    (1 + 2e) / (1 + 2e + 2e^2) for v >= 0 and (e^2 + 2e) / (e^2 + 2e + 2) for v < 0: sums of
    positive terms, no overflow and no cancellation.  Then 1 - tanh^2 = 4 (1 + e)^2 e^2 / d^2
    (v >= 0) or 4 (1 + e)^2 / d^2 (v < 0), and sigmoid(v) = 1 / (1 + e) or e / (1 + e).
    """
    e = exp_neg(abs(v))
    pos = v >= zero
    n = (one + two * e) if pos else e * (e + two)
    d = n + (two * e * e if pos else two)
    m = (e * e if pos else e) * (one + e)
    return n, d, m


@jit
def mish(x, y):
    # x tanh(softplus(x))
    for i in range(x.size):
        v = lower(x[i], lo_clamp)
        n, d, _ = mish_parts(v)
        y[i] = v * (n / d)


@jit
def mish_grad(g, x, out):
    # f' = tanh(s) + x (1 - tanh(s)^2) sigmoid(x), s = softplus(x): (n d + 4 x m) / d^2
    for i in range(x.size):
        v = clamp(x[i], lo_clamp, hi_clamp)
        n, d, m = mish_parts(v)
        r = one / d
        out[i] = g[i] * ((n + four * v * m * r) * r)


@jit
def forward(kind, x, y):
    if kind == 0:
        silu(x, y)
    elif kind == 1:
        gelu(x, y)
    elif kind == 2:
        gelu_tanh(x, y)
    else:
        mish(x, y)


@jit
def backward(kind, g, x, out):
    if kind == 0:
        silu_grad(g, x, out)
    elif kind == 1:
        gelu_grad(g, x, out)
    elif kind == 2:
        gelu_tanh_grad(g, x, out)
    else:
        mish_grad(g, x, out)


pjit = numba.njit(cache=True, nogil=True, parallel=True, boundscheck=False, error_model="numpy")


@pjit
def forward_parallel(kind, x, y, parts):
    step = ((x.size + parts - 1) // parts + 15) // 16 * 16  # whole cache lines per part
    for b in numba.prange(parts):
        lo = min(x.size, b * step)
        hi = min(x.size, lo + step)
        forward(kind, x[lo:hi], y[lo:hi])


@pjit
def backward_parallel(kind, g, x, out, parts):
    step = ((x.size + parts - 1) // parts + 15) // 16 * 16
    for b in numba.prange(parts):
        lo = min(x.size, b * step)
        hi = min(x.size, lo + step)
        backward(kind, g[lo:hi], x[lo:hi], out[lo:hi])
