"""Every nonlinearity actlab knows, each declared once.

Adding an activation means adding one ``ActivationSpec(...)`` to ``CATALOG`` below: the
functional op, the ``nn.Module`` class, the CLI choices, the docs table, the plots, the
probe's mapping and the tests all come from it.

Conventions: every ``forward`` takes a tensor and a mapping of hyperparameters and must be
exact at +-inf (the function's limits) and keep NaN; every ``derivative`` gets ``(x, y, p)``
with ``y = forward(x, p)`` and reads only what ``derivative_from`` names.  At a kink the
derivative is torch's choice where torch has the op (ReLU'(0) = 0, leaky'(0) = slope).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.activations import kernels
from actlab.activations.moments import gaussian_rule
from actlab.activations.spec import SCRATCH, ActivationSpec, HyperParam, Kink, Params

aten = torch.ops.aten
INF = math.inf

# SELU's constants from Klambauer et al. (2017), eq. 14, to full double precision.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _ones(x: Tensor) -> Tensor:
    return torch.ones_like(x)


def _zeros(x: Tensor) -> Tensor:
    return torch.zeros_like(x)


# Exactness at +-inf without paying for it on every call.  torch's fused kernels (silu, gelu,
# mish, their *_backward) give NaN at +-inf (-inf * 0) and some overflow for huge finite x
# (x^3 in GELU-tanh), and a masked fix (isinf + where) costs three to four extra passes over
# memory.  Instead a forward checks its input with one read-only reduction (the 2-norm: NaN,
# inf and every |x| > _MODERATE_NORM make it exceed _MODERATE_NORM) and applies the masked fix
# only when the check fails.  It records the answer in ``p[SCRATCH]`` (the per-call dict the
# generic autograd Function hands on to backward), so the vjp of that call runs the bare kernel,
# exact for |x| <= 1e12.
# Without that record the vjp clamps x to +-_BIG, where every derivative here is already its
# limit (1 or 0) to the last bit in every dtype: exact for all inputs, NaN kept.
# On CUDA, and while torch.compile traces, a data-dependent branch would sync or break the
# graph, so there the branch-free form is used.
# SiLU, GELU, GELU-tanh and Mish skip all this for large contiguous float32 CPU tensors: their own
# fused kernels (:mod:`.kernels`) are exact for every input in the one pass (``_fused``).
# (For float32/float64 the squared norm comes from BLAS ``dot(x, x)``, which reads memory faster
# than ``vector_norm`` (figures: benchmarks/activations.py), and that read is the whole cost of
# the exactness; half dtypes accumulate in float32 through vector_norm, since their own squares
# overflow at 256.)
_MODERATE = "_input_moderate"
_MODERATE_NORM = 1e12
_BIG = 1e4


def _branch_free(x: Tensor) -> bool:
    # A torch.func transform's wrapped tensor (vmap, grad) has no value to read either.
    return (x.device.type != "cpu" or torch.compiler.is_compiling()
            or torch._C._functorch.is_functorch_wrapped_tensor(x))


def _norm(t: Tensor) -> float:
    """||t||_2 (NaN if t has a NaN, inf if an inf), one read-only pass; 0 for an empty tensor."""
    if t.numel() == 0:
        return 0.0
    if t.dtype in (torch.float32, torch.float64) and t.is_contiguous():
        flat = t.view(-1)
        return math.sqrt(torch.dot(flat, flat).item())  # sqrt(nan) is nan, sqrt(inf) inf
    acc = torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else None
    return torch.linalg.vector_norm(t, dtype=acc).item()


def _all_finite(t: Tensor) -> bool:
    # A finite 2-norm means every entry is finite (an overflowing norm of huge finite entries
    # only sends the caller to its exact slow path).
    return math.isfinite(_norm(t))


def _exact(x: Tensor, y: Tensor, p: Params | None, fix) -> Tensor:
    """``y`` (a torch kernel's output), or ``fix(x, y)`` unless every |x| is moderate."""
    if _branch_free(x):
        return fix(x, y)
    ok = _norm(x) <= _MODERATE_NORM  # false for NaN and inf
    _record(p, ok)
    return y if ok else fix(x, y)


def _record(p: Params | None, moderate: bool) -> None:
    scratch = None if p is None else p.get(SCRATCH)
    if scratch is not None:
        scratch[_MODERATE] = moderate


def _fused(kind: int, builtin, fix):
    """A forward: the exact fused float32 kernel of :mod:`.kernels` where it runs (it needs no
    check, and records none: a vjp that cannot use the kernel then clamps), else ``builtin``
    (torch's kernel) made exact by :func:`_exact`."""

    def forward(x: Tensor, p: Params | None = None) -> Tensor:
        if kernels.usable(x):
            return kernels.forward(kind, x)
        return _exact(x, builtin(x), p, fix)

    return forward


def _fused_vjp(kind: int, kernel):
    """A vjp: the exact fused kernel where it runs, else ``kernel`` (torch's) as :func:`_vjp_clamped`."""

    def vjp(g: Tensor, x: Tensor, y: Tensor | None, p: Params) -> Tensor:
        if kernels.usable(x, g):
            return kernels.backward(kind, g, x)
        return _vjp_clamped(kernel, g, x, p)

    return vjp


def _moderate(p: Params) -> bool:
    """Whether this call's forward found every |x| <= _MODERATE_NORM (false when unknown)."""
    return bool(p.get(SCRATCH, {}).get(_MODERATE, False))


def _vjp_clamped(kernel, g: Tensor, x: Tensor, p: Params) -> Tensor:
    """``kernel(g, x)`` (a torch ``*_backward``), exact at +-inf: bare when forward saw moderate x."""
    if _moderate(p):
        return kernel(g, x)
    return kernel(g, x.clamp(-_BIG, _BIG))


def _zero_at_neg_inf(x: Tensor, y: Tensor) -> Tensor:
    # x * s(x) is -inf * 0 = NaN at -inf although the limit is 0; only that point needs a fix.
    return torch.where(x == -INF, 0.0, y)


def _inf_to_relu(x: Tensor, y: Tensor) -> Tensor:
    # GELU's limits are relu's: 0 at -inf, +inf at +inf (torch's f32 kernel gives NaN at both),
    # and it computes x * (1 + erf) / 2, which overflows to inf for x > max / 2.  Beyond
    # |x| = 1e4, GELU (both forms) equals relu to the last bit in every dtype.
    return torch.where(x.abs() > 1e4, x.clamp(min=0), y)


_silu = _fused(kernels.SILU, F.silu, _zero_at_neg_inf)
_gelu = _fused(kernels.GELU, F.gelu, _inf_to_relu)
_gelu_tanh = _fused(kernels.GELU_TANH, lambda x: F.gelu(x, approximate="tanh"), _inf_to_relu)
_silu_vjp = _fused_vjp(kernels.SILU, aten.silu_backward)


def _mask(cond: Tensor, like: Tensor) -> Tensor:
    # Through uint8: torch's bool -> float cast is not vectorised on CPU, uint8's is (figures:
    # benchmarks/activations.py).
    return cond.view(torch.uint8).to(like.dtype)


def _hard_sigmoid_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    # torch's fused kernel multiplies by 1/6 rounded to float32 in every dtype (3e-8 off in
    # float64), so float64 takes the derivative's exact 1/6.
    if x.dtype == torch.float64:
        return g * _hard_sigmoid_derivative(x)
    return aten.hardsigmoid_backward(g, x)


def _hard_sigmoid_derivative(x: Tensor) -> Tensor:
    return _mask((x > -3) & (x < 3), x) / 6


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x * _INV_SQRT_2)


def _gelu_derivative(x: Tensor) -> Tensor:
    pdf = torch.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return torch.where(torch.isinf(x), (x > 0).to(x.dtype), _std_normal_cdf(x) + x * pdf)


def _gelu_tanh_derivative(x: Tensor) -> Tensor:
    # With t = tanh(u): (1 + t) / 2 = s = sigmoid(2u) and 1 - t^2 = 4 s (1 - s).  Written in s,
    # the left tail keeps its tiny nonzero value (1 + t cancels to exactly 0 below x ~ -7 in
    # float64); half dtypes compute in float32, as aten does, since x^2 overflows float16 at 256.
    xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    s = torch.sigmoid(2 * _SQRT_2_OVER_PI * (xc + 0.044715 * xc**3))
    d = s * (1 + 2 * xc * (1 - s) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * xc * xc))
    return torch.where(x.abs() > 1e4, (x > 0).to(x.dtype), d.to(x.dtype))


def _swish_derivative(x: Tensor, beta: float) -> Tensor:
    z = beta * x
    s = torch.sigmoid(z)
    d = s + z * s * (1 - s)
    # Where |beta x| is huge (or overflows to inf: float16 x = 32768, beta = 2) the product
    # z s (1 - s) is inf * 0 = NaN; f' is exactly 0 or 1 there.
    return torch.where(z.abs() > 1e4, (x > 0).to(x.dtype), d)


def _swish(x: Tensor, p: Params) -> Tensor:
    beta = p["beta"]
    if beta == 1:
        return _silu(x, p)
    # softplus_backward(g, x) is g * sigmoid(beta x), so with g = x it is swish in one pass;
    # above its threshold it returns g, where sigmoid(beta x) is 1 to the last bit (e^-20 <
    # 2^-25; float64 needs e^-40), and the threshold also keeps its exp from overflowing.
    threshold = 40.0 if x.dtype == torch.float64 else 20.0
    y = aten.softplus_backward(x, x, beta, threshold)
    return _exact(x, y, p, _zero_at_neg_inf)


def _swish_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    # f'(x) = silu'(beta x): torch's fused SiLU backward at beta x.
    beta = p["beta"]
    if beta == 1:
        return _silu_vjp(g, x, y, p)
    z = x * beta
    # silu_backward is exact for every finite z; beta x overflows only if |x| or beta is huge
    # (always possible in float16), and then the clamp makes it exact again.
    if not (_moderate(p) and beta * _MODERATE_NORM < torch.finfo(x.dtype).max):
        z.clamp_(-_BIG, _BIG)
    return aten.silu_backward(g, z)


_LOG2_ERF_SCALE = math.log2(2 / math.sqrt(math.pi))


def _erf_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    # 2/sqrt(pi) exp(-x^2) g as 2^(log2(2/sqrt(pi)) - x^2 log2(e)) g: one fused multiply-add, then
    # exp2 (torch's CPU exp2 is cheaper than its exp; figures: benchmarks/activations.py) and the
    # product, in place.
    c = torch.tensor(_LOG2_ERF_SCALE, dtype=x.dtype, device=x.device)
    return torch.addcmul(c, x, x, value=-math.log2(math.e)).exp2_().mul_(g)


def _mish_derivative(x: Tensor) -> Tensor:
    t = torch.tanh(F.softplus(x))
    d = t + x * (1 - t * t) * torch.sigmoid(x)
    return torch.where(torch.isinf(x), (x > 0).to(x.dtype), d)


def _softsign(x: Tensor, p: Params | None = None) -> Tensor:
    # Three passes into one fresh buffer; +-inf give inf / inf = NaN, which _exact finds and fixes
    # (+-1 there), so only inputs with an inf or NaN pay for the masked form.
    t = x.abs().add_(1)
    y = torch.div(x, t, out=t)
    return _exact(x, y, p, lambda x, y: torch.where(torch.isinf(x), torch.sign(x), y))


def _softsign_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    # (1 - |y|)^2 g, in place on one fresh buffer.
    return y.abs().sub_(1).square_().mul_(g)


def _keep_nan(x: Tensor, y: Tensor) -> Tensor:
    """``y`` with the NaNs of ``x`` put back (comparisons and torch.sign map NaN to 0); a
    read-only check finds them first, so NaN-free inputs pay one read, not a masked select."""
    if not _branch_free(x) and _all_finite(x):
        return y
    return torch.where(torch.isnan(x), x, y)


def _step(x: Tensor) -> Tensor:
    # A comparison written straight into a float tensor is one pass (torch.heaviside is not
    # vectorised here, and a bool -> float conversion is another pass).
    if _branch_free(x):
        return _keep_nan(x, (x >= 0).to(x.dtype))
    return _keep_nan(x, torch.ge(x, 0, out=torch.empty_like(x)))


def _rrelu(x: Tensor, p: Params) -> Tensor:
    lo, hi = p["lower"], p["upper"]
    if p.get("training", False):
        a = torch.empty_like(x).uniform_(lo, hi)
        return torch.where(x >= 0, x, x * a)
    return F.leaky_relu(x, (lo + hi) / 2)


def _rrelu_derivative(x: Tensor, y: Tensor, p: Params) -> Tensor:
    mid = (p["lower"] + p["upper"]) / 2
    # In training the sampled slope is y / x, so backward needs no stored noise.
    slope = torch.where(x < 0, y / x, mid) if p.get("training", False) else torch.full_like(x, mid)
    return torch.where(x > 0, 1.0, slope)


def _rrelu_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    if p.get("training", False):
        return _rrelu_derivative(x, y, p).mul_(g)
    # Eval: leaky ReLU with the mean slope, torch's fused kernel (x > 0 ? g : g * slope).
    return aten.leaky_relu_backward(g, x, (p["lower"] + p["upper"]) / 2, False)


def _prelu_fused(x: Tensor, a: Any) -> bool:
    # torch's PReLU kernels take the slope as a tensor of the input's dtype and device.
    return isinstance(a, Tensor) and a.dtype == x.dtype and a.device == x.device and not torch.compiler.is_compiling()


def _prelu(x: Tensor, p: Params) -> Tensor:
    a = p["negative_slope"]
    if _prelu_fused(x, a):
        return aten._prelu_kernel(x, a)  # x > 0 ? x : a x, one pass
    if not isinstance(a, Tensor):
        return F.leaky_relu(x, a)
    return torch.where(x > 0, x, x * a)


def _prelu_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    a = p["negative_slope"]
    if _prelu_fused(x, a) and g.dtype == x.dtype:
        return aten._prelu_kernel_backward(g, x, a)[0]
    if not isinstance(a, Tensor):
        return aten.leaky_relu_backward(g, x, a, False)
    return torch.where(x > 0, g, g * a)


def _prelu_param_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> tuple[Tensor, dict[str, Tensor]]:
    # (x > 0 ? g : a g, x > 0 ? 0 : x g) in one pass, as torch's own PReLU backward.
    a = p["negative_slope"]
    if _prelu_fused(x, a) and g.dtype == x.dtype:
        gx, ga = aten._prelu_kernel_backward(g, x, a)
        return gx, {"negative_slope": ga}
    return _prelu_vjp(g, x, y, p), {"negative_slope": g * x.clamp(max=0)}


def _maxout_view(x: Tensor, p: Params) -> Tensor:
    return x.unflatten(-1, (-1, int(p["pieces"])))


def _maxout_forward(x: Tensor, p: Params) -> Tensor:
    if int(p["pieces"]) == 2:
        v = _maxout_view(x, p)
        return torch.maximum(v[..., 0], v[..., 1])
    return _maxout_view(x, p).amax(-1)


def _maxout_derivative(x: Tensor, y: Tensor, p: Params) -> Tensor:
    v = _maxout_view(x, p)
    idx = v.argmax(-1, keepdim=True)
    # one-hot of the first maximal piece by a comparison (an in-place scatter has no vmap rule)
    return (torch.arange(v.shape[-1], device=v.device) == idx).to(x.dtype).flatten(-2)


def _maxout_vjp(g: Tensor, x: Tensor, y: Tensor, p: Params) -> Tensor:
    v = _maxout_view(x, p)
    k = int(p["pieces"])
    if k == 2:
        # The first piece wins ties, as argmax does; selects avoid a scatter.
        if g.dtype in (torch.float32, torch.float64) and not torch.compiler.is_compiling():
            # Elementwise ops writing every other element are not vectorised (several times slower
            # than contiguous ones; figures: benchmarks/activations.py); torch.complex interleaves
            # two contiguous halves at memory speed.
            # g * [first wins] and g - that are g * f' for each piece (inf/NaN in g spread as in
            # g * f').  (A comparison of strided inputs written straight into a float tensor is
            # not vectorised either; bool, then a contiguous cast, is.)
            f = (v[..., 0] >= v[..., 1]).to(g.dtype)
            a = f.mul_(g)
            return torch.view_as_real(torch.complex(a, torch.sub(g, a))).flatten(-2)
        first = v[..., 0] >= v[..., 1]
        zero = g.new_zeros(())
        if torch.compiler.is_compiling():
            # Dynamo rejects a non-contiguous out= (graph break); inductor fuses this form anyway.
            return torch.stack((torch.where(first, g, zero), torch.where(first, zero, g)), -1).flatten(-2)
        out = torch.empty_like(v)
        torch.where(first, g, zero, out=out[..., 0])
        torch.where(first, zero, g, out=out[..., 1])
        return out.flatten(-2)
    idx = v.argmax(-1, keepdim=True)
    return torch.zeros_like(v).scatter_(-1, idx, g.unsqueeze(-1)).flatten(-2)


def _maxout_moments(p: Params) -> tuple[float, float]:
    # max of k iid N(0,1) has density k phi(z) Phi(z)^(k-1).
    from scipy import special  # here, not at the top: importing the catalog then costs no scipy (~0.3 s)

    k = int(p["pieces"])
    z, w = gaussian_rule()
    dens = k * special.ndtr(z) ** (k - 1)
    return float(np.dot(w, z * dens)), float(np.dot(w, z * z * dens))


def _relu_kink(p: Params) -> tuple[Kink, ...]:
    return (Kink(0.0, derivative=0.0, left=0.0, right=1.0),)


def _slope_kink(p: Params) -> tuple[Kink, ...]:
    a = float(p["negative_slope"])
    return (Kink(0.0, derivative=a, left=a, right=1.0),) if a != 1 else ()


def _module_params(**attrs: str):
    """Read hyperparameters off a torch module: ``_module_params(alpha="alpha")``."""
    return lambda m: {k: getattr(m, a) for k, a in attrs.items()}


CATALOG: tuple[ActivationSpec, ...] = (
    ActivationSpec(
        name="identity",
        title="Identity",
        aliases=("linear", "none"),
        formula=r"f(x) = x",
        derivative_formula=r"f'(x) = 1",
        forward=lambda x, p: x,
        passthrough=True,
        derivative=lambda x, y, p: _ones(y),
        derivative_from="output",
        vjp=lambda g, x, y, p: g,
        output_range=lambda p: (-INF, INF),
        monotone=True,
        saturates="none",
        can_die=False,
        builtin=lambda x, p: x,
        torch_modules=((nn.Identity, lambda m: {}),),
        note="No nonlinearity: a deep stack of linear layers is one linear layer and cannot fit XOR.",
        reference="-",
    ),
    ActivationSpec(
        name="step",
        title="Step",
        aliases=("heaviside", "binary_step"),
        formula=r"f(x) = 1 \text{ if } x \ge 0 \text{ else } 0",
        derivative_formula=r"f'(x) = 0 \quad (x \ne 0;\ \text{undefined at } 0)",
        forward=lambda x, p: _step(x),
        derivative=lambda x, y, p: _zeros(y),
        derivative_from="output",
        output_range=lambda p: (0.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        backprop=False,
        kinks=lambda p: (Kink(0.0, derivative=0.0, left=0.0, right=0.0, jump=True),),
        builtin=lambda x, p: torch.heaviside(x, torch.ones((), dtype=x.dtype)),
        torch_functions=(torch.heaviside,),
        note="Cannot be trained by backpropagation: f' = 0 almost everywhere. Sigmoid is its "
        "differentiable stand-in.",
        reference="McCulloch & Pitts (1943); Rosenblatt (1958), the perceptron",
    ),
    ActivationSpec(
        name="sign",
        title="Sign",
        aliases=("signum",),
        formula=r"f(x) = \operatorname{sign}(x) \in \{-1, 0, 1\}",
        derivative_formula=r"f'(x) = 0 \quad (x \ne 0;\ \text{undefined at } 0)",
        forward=lambda x, p: _keep_nan(x, torch.sign(x)),  # torch.sign(NaN) is 0
        derivative=lambda x, y, p: _zeros(y),
        derivative_from="output",
        output_range=lambda p: (-1.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        backprop=False,
        kinks=lambda p: (Kink(0.0, derivative=0.0, left=0.0, right=0.0, jump=True),),
        builtin=lambda x, p: torch.sign(x),
        torch_functions=(torch.sign, torch.Tensor.sign),
        note="Cannot be trained by backpropagation: f' = 0 almost everywhere. Tanh is its "
        "differentiable stand-in.",
        reference="Rosenblatt (1958); Widrow & Hoff (1960), ADALINE",
    ),
    ActivationSpec(
        name="sigmoid",
        title="Sigmoid",
        aliases=("logistic",),
        formula=r"f(x) = \frac{1}{1 + e^{-x}}",
        derivative_formula=r"f'(x) = f(x)\,(1 - f(x)) \le \tfrac14",
        forward=lambda x, p: torch.sigmoid(x),
        forward_inplace=lambda x, p: torch.sigmoid_(x),
        derivative=lambda x, y, p: y * (1 - y),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.sigmoid_backward(g, y),
        vjp_inplace=lambda g, x, y, p: aten.sigmoid_backward.grad_input(g, y, grad_input=g),
        output_range=lambda p: (0.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        transcendental=("exp",),
        builtin=lambda x, p: torch.sigmoid(x),
        torch_modules=((nn.Sigmoid, lambda m: {}),),
        torch_functions=(torch.sigmoid, F.sigmoid, torch.Tensor.sigmoid, torch.special.expit),
        note="f' <= 1/4, so gradients shrink at least 4x a layer (vanishing, worst near the input); "
        "saturates at both ends; outputs not zero-centred (mean 1/2). Prefer tanh or ReLU in hidden layers.",
        reference="Rumelhart, Hinton & Williams (1986)",
    ),
    ActivationSpec(
        name="hard_sigmoid",
        title="Hard Sigmoid",
        aliases=("hardsigmoid",),
        formula=r"f(x) = \operatorname{clip}\left(\frac{x + 3}{6}, 0, 1\right)",
        derivative_formula=r"f'(x) = \tfrac16 \text{ on } (-3, 3) \text{, else } 0",
        forward=lambda x, p: F.hardsigmoid(x),
        # From the input: torch's fused kernel reads x (one pass), the output form would need two.
        derivative=lambda x, y, p: _hard_sigmoid_derivative(x),
        derivative_from="input",
        vjp=_hard_sigmoid_vjp,
        output_range=lambda p: (0.0, 1.0),
        monotone=True,
        saturates="right",  # x > 3; below -3 it is relu6(x + 3) / 6's zero side (inactive)
        can_die=True,
        kinks=lambda p: (Kink(-3.0, 0.0, 0.0, 1 / 6), Kink(3.0, 0.0, 1 / 6, 0.0)),
        builtin=lambda x, p: F.hardsigmoid(x),
        torch_modules=((nn.Hardsigmoid, lambda m: {}),),
        torch_functions=(F.hardsigmoid,),
        note="Cheap piecewise-linear sigmoid, relu6(x + 3) / 6: f' = 0 exactly outside (-3, 3), so units "
        "saturated at 1 (x > 3) or off at 0 (x < -3) stop learning entirely.",
        reference="Howard et al. (2019), MobileNetV3 (after Courbariaux et al. 2015)",
    ),
    ActivationSpec(
        name="tanh",
        title="Tanh",
        aliases=("hyperbolic_tangent",),
        formula=r"f(x) = \tanh(x) = 2\sigma(2x) - 1",
        derivative_formula=r"f'(x) = 1 - f(x)^2 \le 1",
        forward=lambda x, p: torch.tanh(x),
        forward_inplace=lambda x, p: torch.tanh_(x),
        derivative=lambda x, y, p: 1 - y * y,
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.tanh_backward(g, y),
        vjp_inplace=lambda g, x, y, p: aten.tanh_backward.grad_input(g, y, grad_input=g),
        output_range=lambda p: (-1.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        transcendental=("exp",),
        builtin=lambda x, p: torch.tanh(x),
        torch_modules=((nn.Tanh, lambda m: {}),),
        torch_functions=(torch.tanh, F.tanh, torch.Tensor.tanh),
        note="Zero-centred, f'(0) = 1, but still saturates at both ends: large weights or inputs kill "
        "its gradient. Use Xavier initialisation.",
        reference="LeCun, Bottou, Orr & Mueller (1998), Efficient BackProp",
    ),
    ActivationSpec(
        name="hardtanh",
        title="Hardtanh",
        aliases=("hard_tanh",),
        params=(
            HyperParam("min_val", -1.0, doc="lower clip value"),
            HyperParam("max_val", 1.0, doc="upper clip value"),
        ),
        check=lambda p: None if p["min_val"] < p["max_val"] else
        f"min_val ({p['min_val']:g}) must be below max_val ({p['max_val']:g})",
        formula=r"f(x) = \operatorname{clip}(x, \text{min\_val}, \text{max\_val})",
        derivative_formula=r"f'(x) = 1 \text{ on } (\text{min\_val}, \text{max\_val}) \text{, else } 0",
        forward=lambda x, p: torch.clamp(x, p["min_val"], p["max_val"]),
        derivative=lambda x, y, p: _mask((y > p["min_val"]) & (y < p["max_val"]), y),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.hardtanh_backward(g, y, p["min_val"], p["max_val"]),
        output_range=lambda p: (p["min_val"], p["max_val"]),
        monotone=True,
        saturates="both",
        can_die=True,
        kinks=lambda p: (Kink(p["min_val"], 0.0, 0.0, 1.0), Kink(p["max_val"], 0.0, 1.0, 0.0)),
        builtin=lambda x, p: F.hardtanh(x, p["min_val"], p["max_val"]),
        torch_modules=((nn.Hardtanh, _module_params(min_val="min_val", max_val="max_val")),),
        torch_functions=(F.hardtanh,),
        note="Piecewise-linear tanh: zero gradient outside the clip range, so units pushed there stop learning.",
        reference="Collobert (2004), Large scale machine learning",
    ),
    ActivationSpec(
        name="softsign",
        title="Softsign",
        formula=r"f(x) = \frac{x}{1 + |x|}",
        derivative_formula=r"f'(x) = \frac{1}{(1 + |x|)^2} = (1 - |f(x)|)^2",
        forward=_softsign,
        derivative=lambda x, y, p: (1 - y.abs()) ** 2,
        derivative_from="output",
        vjp=_softsign_vjp,
        output_range=lambda p: (-1.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        builtin=lambda x, p: F.softsign(x),
        torch_modules=((nn.Softsign, lambda m: {}),),
        torch_functions=(F.softsign,),
        note="Like tanh but approaches its asymptotes polynomially, so it saturates more gently.",
        reference="Bergstra et al. (2009); Glorot & Bengio (2010)",
    ),
    ActivationSpec(
        name="relu",
        title="ReLU",
        aliases=("rectifier",),
        formula=r"f(x) = \max(0, x)",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } 0",
        forward=lambda x, p: torch.relu(x),
        forward_inplace=lambda x, p: torch.relu_(x),
        derivative=lambda x, y, p: _mask(y > 0, y),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.threshold_backward(g, y, 0),
        vjp_inplace=lambda g, x, y, p: aten.threshold_backward.grad_input(g, y, 0, grad_input=g),
        output_range=lambda p: (0.0, INF),
        monotone=True,
        saturates="none",  # x < 0 is its zero side, where a unit is inactive, not saturated
        can_die=True,
        kinks=_relu_kink,
        leak=lambda p: 0.0,
        builtin=lambda x, p: F.relu(x),
        torch_modules=((nn.ReLU, lambda m: {}),),
        torch_functions=(torch.relu, F.relu, torch.Tensor.relu, torch.relu_, F.relu_, torch.Tensor.relu_),
        note="Does not saturate (x < 0 is its zero side: the unit is off there, not saturated) and is cheap, "
        "so it trains fast; units can die (zero gradient for every "
        "input) with a high learning rate or a very negative bias. Leaky ReLU, PReLU or ELU fix that.",
        reference="Nair & Hinton (2010); Glorot, Bordes & Bengio (2011)",
    ),
    ActivationSpec(
        name="relu6",
        title="ReLU6",
        formula=r"f(x) = \min(\max(0, x), 6)",
        derivative_formula=r"f'(x) = 1 \text{ on } (0, 6) \text{, else } 0",
        forward=lambda x, p: torch.clamp(x, 0.0, 6.0),
        derivative=lambda x, y, p: _mask((y > 0) & (y < 6), y),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.hardtanh_backward(g, y, 0.0, 6.0),
        output_range=lambda p: (0.0, 6.0),
        monotone=True,
        saturates="right",  # x > 6; x < 0 is ReLU's zero side (inactive)
        can_die=True,
        kinks=lambda p: (Kink(0.0, 0.0, 0.0, 1.0), Kink(6.0, 0.0, 1.0, 0.0)),
        builtin=lambda x, p: F.relu6(x),
        torch_modules=((nn.ReLU6, lambda m: {}),),
        torch_functions=(F.relu6,),
        note="ReLU capped at 6 for low-precision robustness; can die like ReLU and also saturates above 6.",
        reference="Krizhevsky (2010), Convolutional deep belief networks on CIFAR-10",
    ),
    ActivationSpec(
        name="leaky_relu",
        title="Leaky ReLU",
        aliases=("lrelu", "leakyrelu"),
        class_name="LeakyReLU",
        params=(HyperParam("negative_slope", 0.01, low=0.0, high=1.0, high_open=True, doc="slope for x < 0"),),
        formula=r"f(x) = x \text{ if } x > 0 \text{ else } a x",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } a",
        forward=lambda x, p: F.leaky_relu(x, p["negative_slope"]),
        derivative=lambda x, y, p: torch.where(y > 0, _ones(y), p["negative_slope"]).to(y.dtype),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.leaky_relu_backward(g, y, p["negative_slope"], True),
        output_range=lambda p: (-INF, INF) if p["negative_slope"] > 0 else (0.0, INF),
        monotone=True,
        saturates="none",
        can_die=False,
        kinks=_slope_kink,
        leak=lambda p: p["negative_slope"],
        builtin=lambda x, p: F.leaky_relu(x, p["negative_slope"]),
        torch_modules=((nn.LeakyReLU, _module_params(negative_slope="negative_slope")),),
        torch_functions=(F.leaky_relu, F.leaky_relu_),
        note="A small slope for x < 0 keeps a gradient everywhere, so units cannot die.",
        reference="Maas, Hannun & Ng (2013)",
    ),
    ActivationSpec(
        name="prelu",
        title="PReLU",
        aliases=("parametric_relu",),
        params=(HyperParam("negative_slope", 0.25, learnable=True, doc="learnable slope for x < 0 (initial value)"),),
        formula=r"f(x) = x \text{ if } x > 0 \text{ else } a x, \quad a \text{ learned}",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } a; \quad \partial f / \partial a = \min(0, x)",
        forward=_prelu,
        derivative=lambda x, y, p: torch.where(x > 0, _ones(x), p["negative_slope"]).to(x.dtype).expand_as(x),
        derivative_from="input",
        vjp=_prelu_vjp,
        param_grads={"negative_slope": lambda x, y, p: torch.where(x > 0, 0.0, x)},
        param_vjp=_prelu_param_vjp,
        output_range=lambda p: (-INF, INF),
        monotone=False,
        saturates="none",
        can_die=False,
        kinks=lambda p: (Kink(0.0, float(torch.as_tensor(p["negative_slope"]).flatten()[0]),
                              float(torch.as_tensor(p["negative_slope"]).flatten()[0]), 1.0),),
        leak=lambda p: p["negative_slope"],
        builtin=lambda x, p: F.prelu(x, torch.as_tensor(p["negative_slope"], dtype=x.dtype).reshape(-1)),
        torch_modules=((nn.PReLU, lambda m: {"negative_slope": m.weight.detach()}),),
        torch_functions=(F.prelu,),
        note="Leaky ReLU whose slope is learned (one per layer or per channel); not monotone if the "
        "slope turns negative. Adds a parameter per channel.",
        reference="He, Zhang, Ren & Sun (2015), Delving deep into rectifiers",
    ),
    ActivationSpec(
        name="rrelu",
        title="RReLU",
        aliases=("randomized_relu",),
        params=(
            HyperParam("lower", 1 / 8, low=0.0, high=1.0, doc="lower bound of the random slope"),
            HyperParam("upper", 1 / 3, low=0.0, high=1.0, doc="upper bound of the random slope"),
        ),
        check=lambda p: None if p["lower"] <= p["upper"] else
        f"lower ({p['lower']:g}) must not exceed upper ({p['upper']:g})",
        formula=r"f(x) = x \text{ if } x \ge 0 \text{ else } a x, \ a \sim U(l, u) \text{ (train)}, "
        r"\ a = \tfrac{l+u}{2} \text{ (eval)}",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } a",
        forward=_rrelu,
        derivative=_rrelu_derivative,
        derivative_from="both",
        vjp=_rrelu_vjp,
        output_range=lambda p: (-INF, INF) if p["upper"] > 0 else (0.0, INF),
        monotone=True,
        saturates="none",
        can_die=False,
        kinks=lambda p: (Kink(0.0, (p["lower"] + p["upper"]) / 2, (p["lower"] + p["upper"]) / 2, 1.0),),
        leak=lambda p: (p["lower"] + p["upper"]) / 2,  # the mean slope, what eval uses
        builtin=lambda x, p: F.rrelu(x, p["lower"], p["upper"], training=bool(p.get("training", False))),
        torch_modules=((nn.RReLU, _module_params(lower="lower", upper="upper")),),
        torch_functions=(F.rrelu, F.rrelu_),
        note="Leaky ReLU with a random slope in training (a regulariser) and the mean slope at test time.",
        reference="Xu, Wang, Chen & Li (2015), Empirical evaluation of rectified activations",
    ),
    ActivationSpec(
        name="elu",
        title="ELU",
        params=(HyperParam("alpha", 1.0, low=0.0, low_open=True, doc="negative saturation value (-alpha)"),),
        formula=r"f(x) = x \text{ if } x > 0 \text{ else } \alpha (e^x - 1)",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } f(x) + \alpha",
        forward=lambda x, p: F.elu(x, p["alpha"]),
        derivative=lambda x, y, p: torch.where(y > 0, 1.0, y + p["alpha"]),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.elu_backward(g, p["alpha"], 1.0, 1.0, True, y),
        output_range=lambda p: (-p["alpha"], INF),
        monotone=True,
        saturates="left",
        can_die=False,
        kinks=lambda p: (Kink(0.0, p["alpha"], p["alpha"], 1.0),) if p["alpha"] != 1 else (),
        transcendental=("exp",),
        builtin=lambda x, p: F.elu(x, p["alpha"]),
        torch_modules=((nn.ELU, _module_params(alpha="alpha")),),
        torch_functions=(F.elu, F.elu_),
        note="Negative outputs push mean activations toward zero and keep a gradient for x < 0, so units do "
        "not die; costs an exp.",
        reference="Clevert, Unterthiner & Hochreiter (2015)",
    ),
    ActivationSpec(
        name="celu",
        title="CELU",
        params=(HyperParam("alpha", 1.0, low=0.0, low_open=True, doc="negative saturation value (-alpha)"),),
        formula=r"f(x) = \max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))",
        derivative_formula=r"f'(x) = 1 \text{ if } x > 0 \text{ else } e^{x/\alpha} = f(x)/\alpha + 1",
        forward=lambda x, p: F.celu(x, p["alpha"]),
        derivative=lambda x, y, p: torch.where(y > 0, 1.0, y / p["alpha"] + 1),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.elu_backward(g, p["alpha"], 1.0, 1.0 / p["alpha"], True, y),
        output_range=lambda p: (-p["alpha"], INF),
        monotone=True,
        saturates="left",
        can_die=False,
        transcendental=("exp",),
        builtin=lambda x, p: F.celu(x, p["alpha"]),
        torch_modules=((nn.CELU, _module_params(alpha="alpha")),),
        torch_functions=(F.celu, F.celu_),
        note="ELU made continuously differentiable for every alpha.",
        reference="Barron (2017), Continuously differentiable exponential linear units",
    ),
    ActivationSpec(
        name="selu",
        title="SELU",
        formula=r"f(x) = \lambda \left(x \text{ if } x > 0 \text{ else } \alpha (e^x - 1)\right), "
        r"\ \lambda \approx 1.0507, \alpha \approx 1.6733",
        derivative_formula=r"f'(x) = \lambda \text{ if } x > 0 \text{ else } f(x) + \lambda\alpha",
        forward=lambda x, p: F.selu(x),
        derivative=lambda x, y, p: torch.where(y > 0, SELU_LAMBDA, y + SELU_LAMBDA * SELU_ALPHA),
        derivative_from="output",
        vjp=lambda g, x, y, p: aten.elu_backward(g, SELU_ALPHA, SELU_LAMBDA, 1.0, True, y),
        output_range=lambda p: (-SELU_LAMBDA * SELU_ALPHA, INF),
        monotone=True,
        saturates="left",
        can_die=False,
        kinks=lambda p: (Kink(0.0, SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA),),
        transcendental=("exp",),
        builtin=lambda x, p: F.selu(x),
        torch_modules=((nn.SELU, lambda m: {}),),
        torch_functions=(F.selu, torch.selu, torch.selu_),
        note="Self-normalising: with LeCun-normal weights (sigma_w^2 = 1), mean 0 and variance 1 are a fixed "
        "point. Needs that initialisation and no batch norm to keep the property.",
        reference="Klambauer, Unterthiner, Mayr & Hochreiter (2017), Self-normalizing neural networks",
    ),
    ActivationSpec(
        name="softplus",
        title="Softplus",
        params=(
            HyperParam("beta", 1.0, low=0.0, low_open=True, doc="sharpness; f -> ReLU as beta -> inf"),
            HyperParam("threshold", 20.0, low=0.0, low_open=True, doc="beta*x above which f(x) = x"),
        ),
        formula=r"f(x) = \tfrac{1}{\beta} \log(1 + e^{\beta x})",
        derivative_formula=r"f'(x) = \sigma(\beta x)",
        forward=lambda x, p: F.softplus(x, p["beta"], p["threshold"]),
        derivative=lambda x, y, p: torch.where(x * p["beta"] > p["threshold"], 1.0, torch.sigmoid(p["beta"] * x)),
        derivative_from="input",
        vjp=lambda g, x, y, p: aten.softplus_backward(g, x, p["beta"], p["threshold"]),
        output_range=lambda p: (0.0, INF),
        monotone=True,
        saturates="left",
        can_die=False,
        transcendental=("exp", "log"),
        builtin=lambda x, p: F.softplus(x, p["beta"], p["threshold"]),
        torch_modules=((nn.Softplus, _module_params(beta="beta", threshold="threshold")),),
        torch_functions=(F.softplus,),
        note="A smooth ReLU whose derivative is the sigmoid; never exactly zero gradient, but not zero-centred "
        "and costs exp and log.",
        reference="Dugas et al. (2001); Glorot, Bordes & Bengio (2011)",
    ),
    ActivationSpec(
        name="gelu",
        title="GELU",
        formula=r"f(x) = x \, \Phi(x) = \tfrac{x}{2}\left(1 + \operatorname{erf}(x / \sqrt{2})\right)",
        derivative_formula=r"f'(x) = \Phi(x) + x \, \varphi(x)",
        forward=_gelu,
        derivative=lambda x, y, p: _gelu_derivative(x),
        derivative_from="input",
        vjp=_fused_vjp(kernels.GELU, aten.gelu_backward),
        output_range=lambda p: (-0.16997120747990222, INF),
        monotone=False,
        saturates="left",
        can_die=False,
        transcendental=("erf", "exp"),
        builtin=lambda x, p: F.gelu(x),
        torch_modules=((nn.GELU, lambda m: {} if m.approximate == "none" else None),),
        torch_functions=(F.gelu,),
        note="Smooth, non-monotone ReLU weighted by the Gaussian CDF; the default in transformers. Costs erf.",
        reference="Hendrycks & Gimpel (2016), Gaussian error linear units",
    ),
    ActivationSpec(
        name="gelu_tanh",
        title="GELU (tanh approximation)",
        class_name="GELUTanh",
        aliases=("gelu_approx",),
        formula=r"f(x) = \tfrac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)\right)",
        derivative_formula=r"f'(x) = \tfrac12(1 + t) + \tfrac{x}{2}(1 - t^2)\sqrt{2/\pi}(1 + 0.134145 x^2)",
        forward=_gelu_tanh,
        derivative=lambda x, y, p: _gelu_tanh_derivative(x),
        derivative_from="input",
        # aten's kernel cubes x: inf * 0 = NaN beyond |x| ~ 1e13 (f32); f' is 0 or 1 past 1e4.
        vjp=_fused_vjp(kernels.GELU_TANH, lambda g, t: aten.gelu_backward(g, t, approximate="tanh")),
        output_range=lambda p: (-0.17004075057125406, INF),  # f(-0.75246142339), measured in float64
        monotone=False,
        saturates="left",
        can_die=False,
        transcendental=("tanh",),
        builtin=lambda x, p: F.gelu(x, approximate="tanh"),
        torch_modules=((nn.GELU, lambda m: {} if m.approximate == "tanh" else None),),
        note="The tanh approximation of GELU used by BERT and GPT-2; within 1e-3 of the exact form.",
        reference="Hendrycks & Gimpel (2016)",
    ),
    ActivationSpec(
        name="silu",
        title="SiLU",
        aliases=("swish1",),
        formula=r"f(x) = x \, \sigma(x)",
        derivative_formula=r"f'(x) = \sigma(x)\,(1 + x (1 - \sigma(x)))",
        forward=_silu,
        derivative=lambda x, y, p: _swish_derivative(x, 1.0),
        derivative_from="input",
        vjp=_silu_vjp,
        output_range=lambda p: (-0.27846454276107380, INF),
        monotone=False,
        saturates="left",
        can_die=False,
        transcendental=("exp",),
        builtin=lambda x, p: F.silu(x),
        torch_modules=((nn.SiLU, lambda m: {}),),
        torch_functions=(F.silu,),
        note="Smooth, non-monotone, self-gated; min about -0.278 at x = -1.278. Costs an exp.",
        reference="Elfwing, Uchibe & Doya (2017); Hendrycks & Gimpel (2016)",
    ),
    ActivationSpec(
        name="swish",
        title="Swish",
        params=(HyperParam("beta", 1.0, low=0.0, low_open=True, doc="gate sharpness; beta = 1 is SiLU"),),
        formula=r"f(x) = x \, \sigma(\beta x)",
        derivative_formula=r"f'(x) = \sigma(\beta x) + \beta x \, \sigma(\beta x)(1 - \sigma(\beta x))",
        forward=_swish,
        derivative=lambda x, y, p: _swish_derivative(x, p["beta"]),
        derivative_from="input",
        vjp=_swish_vjp,
        output_range=lambda p: (-0.27846454276107380 / p["beta"], INF),
        monotone=False,
        saturates="left",
        can_die=False,
        transcendental=("exp",),
        note="SiLU with a gate sharpness beta: beta -> inf gives ReLU, beta -> 0 gives x/2.",
        reference="Ramachandran, Zoph & Le (2017), Searching for activation functions",
    ),
    ActivationSpec(
        name="mish",
        title="Mish",
        formula=r"f(x) = x \tanh(\operatorname{softplus}(x))",
        derivative_formula=r"f'(x) = \tanh(s) + x\,(1 - \tanh^2 s)\,\sigma(x), \ s = \operatorname{softplus}(x)",
        forward=_fused(kernels.MISH, F.mish, _zero_at_neg_inf),
        derivative=lambda x, y, p: _mish_derivative(x),
        derivative_from="input",
        vjp=_fused_vjp(kernels.MISH, aten.mish_backward),
        output_range=lambda p: (-0.3088434130172505, INF),  # f(-1.19243120705), measured in float64
        monotone=False,
        saturates="left",
        can_die=False,
        transcendental=("exp", "log", "tanh"),
        builtin=lambda x, p: F.mish(x),
        torch_modules=((nn.Mish, lambda m: {}),),
        torch_functions=(F.mish,),
        note="Smooth, non-monotone, like SiLU with a softer gate; composed of torch ops it is the costliest "
        "here (exp, log, tanh).",
        reference="Misra (2019), Mish: a self regularized non-monotonic activation function",
    ),
    ActivationSpec(
        name="erf",
        title="Erf",
        formula=r"f(x) = \operatorname{erf}(x) = \tfrac{2}{\sqrt\pi} \int_0^x e^{-t^2} dt",
        derivative_formula=r"f'(x) = \tfrac{2}{\sqrt\pi} e^{-x^2}",
        forward=lambda x, p: torch.erf(x),
        derivative=lambda x, y, p: (2 / math.sqrt(math.pi)) * torch.exp(-x * x),
        derivative_from="input",
        vjp=_erf_vjp,
        output_range=lambda p: (-1.0, 1.0),
        monotone=True,
        saturates="both",
        can_die=False,
        transcendental=("erf",),
        builtin=lambda x, p: torch.erf(x),
        torch_functions=(torch.erf, torch.special.erf, torch.Tensor.erf),
        note="A sigmoid-shaped function whose Gaussian integrals have closed forms; the reference case of "
        "mean-field theory.",
        reference="Williams (1997), Computing with infinite networks",
    ),
    ActivationSpec(
        name="maxout",
        title="Maxout",
        params=(HyperParam("pieces", 2, low=1.0, integer=True, doc="k: linear pieces per output unit"),),
        formula=r"f(x)_j = \max_{i < k} x_{jk + i} \quad \text{(last dim shrinks by } k)",
        derivative_formula=r"\partial f_j / \partial x_{jk+i} = 1 \text{ for the first maximal } i, \text{ else } 0",
        forward=_maxout_forward,
        derivative=_maxout_derivative,
        derivative_from="input",
        vjp=_maxout_vjp,
        output_range=lambda p: (-INF, INF),
        monotone=True,
        saturates="none",
        can_die=False,
        elementwise=False,
        group="pieces",
        moments_override=_maxout_moments,
        note="Max over k linear pieces per unit (Linear(n, m * k) then maxout gives m units): k times the "
        "parameters of the layer it follows (2x at k = 2); generalises ReLU and leaky ReLU; cannot die.",
        reference="Goodfellow, Warde-Farley, Mirza, Courville & Bengio (2013), Maxout networks",
    ),
)
