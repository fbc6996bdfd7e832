"""Autograd glue: one generic ``torch.autograd.Function`` per spec, the functional op and
the ``nn.Module`` wrapper.

Backward is the spec's one backward (:meth:`ActivationSpec.backward`: its fused ``vjp``, which
a test holds equal to ``grad * derivative``, or ``grad * derivative``); it keeps only what
``derivative_from`` says it needs, so sigmoid's backward holds the output and not the input.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from actlab.activations.registry import get, specs
from actlab.activations.spec import SCRATCH, ActivationError, ActivationSpec

Impl = Literal["analytic", "builtin"]


@lru_cache(maxsize=None)
def autograd_function(spec: ActivationSpec) -> type[torch.autograd.Function]:
    """The ``torch.autograd.Function`` whose backward is ``spec``'s analytic derivative.

    Its inputs are ``(x, scratch, training, *hyperparameters)`` (``scratch``: a fresh ``dict``
    per call, see :data:`~actlab.activations.spec.SCRATCH`).  It is written in the
    ``forward`` + ``setup_context`` style with a ``vmap`` rule, so ``torch.func`` transforms
    (``grad``, ``vjp``, ``jacrev``, ``vmap``) see through it, and its backward
    (:meth:`ActivationSpec.backward`) is built from differentiable torch ops whenever it is
    itself differentiated (double backward, nested transforms); plain backward keeps the fused
    kernels.
    """
    token = len(_SPECS)  # this spec's key in _SPECS (a spec built like a catalog one may share its name)
    _SPECS[token] = spec
    names = tuple(hp.name for hp in spec.params)
    learnable = spec.learnable
    at = {n: 3 + names.index(n) for n in learnable}  # position of each learnable among the inputs
    keep_x = spec.derivative_from in ("input", "both") or bool(learnable)
    keep_y = spec.derivative_from in ("output", "both") or bool(learnable)

    class AnalyticActivation(torch.autograd.Function):
        @staticmethod
        def forward(x: Tensor, scratch: dict, training: bool, *values: Any) -> Tensor:  # type: ignore[override]
            p = dict(zip(names, values))
            p["training"] = training
            p[SCRATCH] = scratch  # what forward learns about x, for this call's backward
            return _SPECS[token].forward(x, p)  # (not the closure's spec: see backward)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
            x, scratch, training, *values = inputs
            p = dict(zip(names, values))
            ctx.save_for_backward(x if keep_x else None, output if keep_y else None, *(p[n] for n in learnable))
            ctx.p = {k: v for k, v in p.items() if k not in learnable}
            ctx.p["training"] = training
            ctx.p[SCRATCH] = scratch

        @staticmethod
        def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
            # The spec through the module's dict, not the closure: Dynamo traces the Function's
            # closure objects without a source and cannot wrap a spec there (fullgraph fails).
            spec = _SPECS[token]
            x, y, *lp = ctx.saved_tensors
            p = {**ctx.p, **dict(zip(learnable, lp))} if learnable else ctx.p
            # Differentiated again (create_graph, or a torch.func transform above this one):
            # build the backward from differentiable ops instead of the fused kernels.
            again = torch.is_grad_enabled() and any(_traced(t) for t in (g, x, y, *lp) if t is not None)
            need_x = ctx.needs_input_grad[0]
            wanted = [n for n in learnable if ctx.needs_input_grad[at[n]]]
            if wanted:
                gx, pg = spec.backward_params(g, x, y, p, wanted, input_grad=need_x, differentiable=again)
            else:
                gx, pg = (spec.backward(g, x, y, p, differentiable=again) if need_x else None), {}
            return (gx, None, None, *(pg.get(n) for n in names))

        @staticmethod
        def vmap(info: Any, in_dims: tuple, x: Tensor, scratch: dict, training: bool,
                 *values: Any) -> tuple[Tensor, int]:
            # Elementwise (or grouped along the last dim, which keeps its place): the batched
            # call is one call on the batch-first tensor.  A batched hyperparameter (a PReLU
            # slope per example) gets ones between the batch dim and its own dims, so it
            # broadcasts against x's trailing dims as it did unbatched.
            x_dim, _, _, *v_dims = in_dims
            x = x.movedim(x_dim, 0) if x_dim is not None else x.expand(info.batch_size, *x.shape)
            vals = []
            for v, d in zip(values, v_dims):
                if d is not None:
                    v = v.movedim(d, 0)
                    v = v.reshape(v.shape[0], *[1] * max(x.dim() - v.dim(), 0), *v.shape[1:])
                vals.append(v)
            return AnalyticActivation.apply(x, scratch, training, *vals), 0

    AnalyticActivation.__name__ = AnalyticActivation.__qualname__ = f"{spec.title.replace(' ', '')}Function"
    _FUNCTIONS[spec.name] = (spec, AnalyticActivation)
    return AnalyticActivation


def _traced(t: Tensor) -> bool:
    """Whether autograd or a ``torch.func`` transform will differentiate through ``t``."""
    return t.requires_grad or _wrapped(t)


# torch.compile (Dynamo) cannot trace a call to an lru_cache'd function that builds a class:
# it graph-breaks there and the activation runs eagerly.  A plain dict lookup traces, so
# ``apply`` finds the Function here; every catalog spec is registered at import, others on
# first eager use (``Activation.__init__`` does it for modules).
# (An attribute read off the Function class does not trace either, hence the (spec, Function) pairs.)
_FUNCTIONS: dict[str, tuple[ActivationSpec, type[torch.autograd.Function]]] = {}
_SPECS: dict[int, ActivationSpec] = {}  # each Function's spec, by an int its closure holds


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
    k = spec.group_size(p)
    if k != 1 and (x.dim() == 0 or x.shape[-1] % k):
        raise ActivationError(
            f"{spec.name}: the last dimension ({x.shape[-1] if x.dim() else 'none: a 0-d input'}) must be a "
            f"multiple of {spec.group}={k}"
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
    return _call(_function_for(spec), x, training, values)


def _call(fn: type[torch.autograd.Function], x: Tensor, training: bool, values: list) -> Tensor:
    """``fn.apply(x, {}, training, *values)``, straight to autograd's C++ ``apply`` when no
    ``torch.func`` transform and no compiler is involved: for a Function with ``setup_context``
    torch's Python ``apply`` binds the forward's signature (``inspect``) on every call, which
    tripled the cost of a small activation; with every argument positional there is nothing
    to bind.  Transforms, the compiler and tensors left over from a transform take torch's path.
    """
    if (torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()
            or _wrapped(x) or any(isinstance(v, Tensor) and _wrapped(v) for v in values)):
        return fn.apply(x, {}, training, *values)
    return super(torch.autograd.Function, fn).apply(x, {}, training, *values)  # type: ignore[misc]


_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


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


def spec_for_module(module: nn.Module) -> tuple[ActivationSpec, dict[str, Any]] | None:
    """Map an activation module (actlab's or torch's) to its spec and hyperparameters."""
    if isinstance(module, Activation):
        params: dict[str, Any] = dict(module.fixed)
        for n in module.spec.learnable:
            params[n] = getattr(module, n).detach()
        return module.spec, params
    for s in specs():
        for cls, read in s.torch_modules:
            if type(module) is cls:
                got = read(module)
                if got is not None:
                    return s, got
    return None


for _s in specs():
    autograd_function(_s)
