"""Autograd glue: one generic ``torch.autograd.Function`` per spec, the functional op and
the ``nn.Module`` wrapper.

Backward always uses the spec's analytic derivative (or its fused ``vjp``, which a test holds
equal to ``grad * derivative``); it keeps only what ``derivative_from`` says it needs, so
sigmoid's backward holds the output and not the input.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from actlab.activations.spec import SCRATCH, ActivationError, ActivationSpec

Impl = Literal["analytic", "builtin"]


@lru_cache(maxsize=None)
def autograd_function(spec: ActivationSpec) -> type[torch.autograd.Function]:
    """The ``torch.autograd.Function`` whose backward is ``spec``'s analytic derivative."""
    names = tuple(hp.name for hp in spec.params)
    learnable = spec.learnable
    keep_x = spec.derivative_from in ("input", "both") or bool(learnable)
    keep_y = spec.derivative_from in ("output", "both") or bool(learnable)
    vjp = spec.vjp
    param_vjp = spec.param_vjp
    deriv = spec.derivative
    elementwise = spec.elementwise

    def _vjp(g: Tensor, x: Tensor, y: Tensor, p: dict) -> Tensor:
        if vjp is not None:
            return vjp(g, x, y, p)
        d = deriv(x, y, p)
        if elementwise:
            return g * d
        k = p["pieces"]
        return (g.unsqueeze(-1) * d.unflatten(-1, (-1, k))).flatten(-2)

    class AnalyticActivation(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Tensor, training: bool, *values: Any) -> Tensor:  # type: ignore[override]
            p = dict(zip(names, values))
            p["training"] = training
            p[SCRATCH] = {}  # what forward learns about x, for this call's vjp
            y = spec.forward(x, p)
            tensors = [x if keep_x else None, y if keep_y else None]
            tensors += [p[n] for n in learnable]
            ctx.save_for_backward(*tensors)
            ctx.p = {k: v for k, v in p.items() if k not in learnable}
            return y

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
            x, y, *lp = ctx.saved_tensors
            if not learnable:
                return (_vjp(g, x, y, ctx.p) if ctx.needs_input_grad[0] else None, None, *[None] * len(names))
            p = dict(ctx.p)
            p.update(zip(learnable, lp))
            wanted = [n for n in learnable if ctx.needs_input_grad[2 + names.index(n)]]
            if wanted and param_vjp is not None:
                # One fused kernel for the input and the hyperparameters (PReLU).
                gx, pgs = param_vjp(g, x, y, p)
                if not ctx.needs_input_grad[0]:
                    gx = None
            else:
                gx = _vjp(g, x, y, p) if ctx.needs_input_grad[0] else None
                pgs = {n: g * spec.param_grads[n](x, y, p) for n in wanted}
            grads: list[Tensor | None] = [gx, None]
            for n in names:
                grads.append(pgs[n].sum_to_size(p[n].shape) if n in wanted else None)
            return tuple(grads)

    AnalyticActivation.__name__ = AnalyticActivation.__qualname__ = f"{spec.title.replace(' ', '')}Function"
    _FUNCTIONS[spec.name] = (spec, AnalyticActivation)
    return AnalyticActivation


# torch.compile (Dynamo) cannot trace a call to an lru_cache'd function that builds a class:
# it graph-breaks there and the activation runs eagerly.  A plain dict lookup traces, so
# ``apply`` finds the Function here; every catalog spec is registered at import, others on
# first eager use (``Activation.__init__`` does it for modules).
# (An attribute read off the Function class does not trace either, hence the (spec, Function) pairs.)
_FUNCTIONS: dict[str, tuple[ActivationSpec, type[torch.autograd.Function]]] = {}


def _function_for(spec: ActivationSpec) -> type[torch.autograd.Function]:
    entry = _FUNCTIONS.get(spec.name)
    if entry is None or entry[0] is not spec:
        return autograd_function(spec)
    return entry[1]


def apply(spec: ActivationSpec, x: Any, *, impl: Impl = "analytic", training: bool = False, **params: Any) -> Any:
    """Apply ``spec`` to a tensor, a NumPy array or a number.

    Args:
        spec: the activation.
        x: input; NumPy arrays and Python numbers are computed in torch and returned as NumPy.
        impl: ``"analytic"`` (default): backward is the catalog's analytic derivative;
            ``"builtin"``: torch's own op (only for activations torch has).
        training: RReLU samples its slopes when true.
        **params: hyperparameters (validated; defaults fill the rest).
    """
    if spec.passthrough and isinstance(x, Tensor) and not params and impl in ("analytic", "builtin"):
        return x
    p = spec.resolve(**params)
    if not isinstance(x, Tensor):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fc":
            arr = arr.astype(np.float64)
        with torch.no_grad():
            t = torch.from_numpy(arr)
            out = apply(spec, t, impl=impl, training=training, **p)
        res = out.numpy().copy() if out is t else out.numpy()  # never alias the caller's array
        return res if np.ndim(x) else res[()]
    if spec.passthrough and impl in ("analytic", "builtin"):
        return x
    if impl == "builtin":
        if spec.builtin is None:
            raise ActivationError(f"torch has no built-in {spec.name!r}; use impl='analytic'")
        return spec.builtin(x, {**p, "training": training})
    if impl != "analytic":
        raise ActivationError(f"unknown impl {impl!r}; valid: 'analytic', 'builtin'")
    if not spec.elementwise:
        k = p.get("pieces", 1)
        if x.shape[-1] % k:
            raise ActivationError(
                f"{spec.name}: the last dimension ({x.shape[-1]}) must be a multiple of pieces={k}"
            )
    values = []
    for hp in spec.params:
        v = p[hp.name]
        if hp.learnable and not isinstance(v, Tensor):
            v = torch.tensor(v, dtype=x.dtype, device=x.device)
        elif hp.learnable and v.dtype != x.dtype:
            # The output keeps the input's dtype (a float32 PReLU slope on float16 input gave
            # float32); the cast is differentiable, so the slope's gradient comes back in its dtype.
            v = v.to(x.dtype)
        values.append(v)
    return _function_for(spec).apply(x, training, *values)


class Activation(nn.Module):
    """``nn.Module`` for any catalog activation; the per-activation classes subclass it.

    Learnable hyperparameters (PReLU's slope) become ``nn.Parameter`` of ``num_parameters``
    entries, broadcast along dim 1 of the input (channels) as torch's ``PReLU`` does.

    Args:
        spec: the activation (or its name).
        num_parameters: entries of each learnable hyperparameter (1, or the channel count).
        **params: hyperparameters; see the activation's own class for names and ranges.
    """

    spec: ActivationSpec

    def __init__(self, spec: ActivationSpec | str | None = None, *, num_parameters: int = 1, **params: Any) -> None:
        super().__init__()
        if spec is None:
            spec = type(self).spec
        elif isinstance(spec, str):
            from actlab.activations.registry import get

            spec = get(spec)
        self.spec = spec
        autograd_function(spec)  # registered eagerly so a compiled forward finds it (see _FUNCTIONS)
        resolved = dict(spec.resolve(**params))
        self.fixed = {k: v for k, v in resolved.items() if k not in spec.learnable}
        if spec.learnable and (not isinstance(num_parameters, int) or num_parameters < 1):
            raise ActivationError(f"num_parameters must be a positive integer, got {num_parameters!r}")
        self.num_parameters = num_parameters
        for name in spec.learnable:
            init = float(resolved[name])
            self.register_parameter(name, nn.Parameter(torch.full((num_parameters,), init)))

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):  # NumPy arrays and numbers, as ``apply`` takes them
            arr = np.asarray(x)
            if arr.dtype.kind not in "fc":
                arr = arr.astype(np.float64)
            with torch.no_grad():
                out = self.forward(torch.from_numpy(arr)).numpy()
            return out if np.ndim(x) else out[()]
        params: dict[str, Any] = dict(self.fixed)
        for name in self.spec.learnable:
            w = getattr(self, name)
            if x.dim() >= 2 and w.numel() > 1:
                w = w.view(-1, *([1] * (x.dim() - 2)))
            params[name] = w
        return apply(self.spec, x, training=self.training, **params)

    def extra_repr(self) -> str:
        parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fixed.items()]
        if self.spec.learnable:
            parts.append(f"num_parameters={self.num_parameters}")
        return ", ".join(parts)


def _register_catalog() -> None:
    from actlab.activations.catalog import CATALOG

    for s in CATALOG:
        autograd_function(s)


_register_catalog()
