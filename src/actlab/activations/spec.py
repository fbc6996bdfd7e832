"""The declaration of one nonlinearity: :class:`ActivationSpec`.

Everything actlab knows about an activation lives in one ``ActivationSpec`` in
:mod:`actlab.activations.catalog`.  Modules, functional ops, the CLI, plots, docs
tables, tests, the probe and the theory read it from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping

from torch import Tensor

from actlab.activations.moments import Moments, Params
from actlab.activations.moments import max_abs_derivative as _max_abs_derivative
from actlab.activations.moments import moments as _moments


SCRATCH = "_scratch"
"""Key of a fresh per-call ``dict`` that the generic autograd Function puts into ``p``: a
``forward`` may note facts about its input there (e.g. that every |x| is moderate, so the bare
torch kernel is exact) for the ``vjp`` of the same call.  Direct callers pass none, so a vjp must
be exact without it."""

ForwardFn = Callable[[Tensor, Params], Tensor]
DerivativeFn = Callable[[Tensor, Tensor, Params], Tensor]
"""``derivative(x, y, p) -> f'(x)`` where ``y = f(x)``; it may read only one of them."""
VjpFn = Callable[[Tensor, Tensor, Tensor, Params], Tensor]
"""``vjp(grad, x, y, p) -> grad * f'(x)``, a fused form of the same derivative."""
ParamVjpFn = Callable[[Tensor, Tensor, Tensor, Params], tuple[Tensor, dict[str, Tensor]]]
"""``param_vjp(grad, x, y, p) -> (grad * f'(x), {name: grad * df/dname})`` in one kernel; the
parameter terms are elementwise (the autograd Function reduces them to the parameter's shape)."""

Side = Literal["none", "left", "right", "both"]


class ActivationError(ValueError):
    """Bad activation name or hyperparameter; the message names the value and the choices."""


@dataclass(frozen=True)
class HyperParam:
    """A hyperparameter of an activation, with its default and valid range.

    Args:
        name: keyword used by the functional op, the module and the CLI (``--param name=v``).
        default: value used when none is given.
        low, high: bounds of the valid range (``None``: unbounded).
        low_open, high_open: whether a bound is excluded from the range.
        integer: the value must be a whole number (e.g. maxout's ``pieces``).
        learnable: the module holds it as an ``nn.Parameter`` (PReLU's slope).
        doc: one line for docs and ``actlab show``.
    """

    name: str
    default: float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    learnable: bool = False
    doc: str = ""

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        kind = "an integer in " if self.integer else ""
        return f"{kind}{left}{lo}, {hi}{right}"

    def validate(self, value: Any, activation: str = "") -> float:
        """Return ``value`` as a float (int for integer params) or raise :class:`ActivationError`."""
        where = f" of {activation!r}" if activation else ""
        if isinstance(value, Tensor):
            if not self.learnable:
                raise ActivationError(f"hyperparameter {self.name!r}{where} must be a number, got a tensor")
            return value  # type: ignore[return-value]
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ActivationError(
                f"hyperparameter {self.name!r}{where} must be a number in {self.range_text()}, got {value!r}"
            ) from None
        bad = math.isnan(v)
        if self.low is not None:
            bad |= v < self.low or (self.low_open and v == self.low)
        if self.high is not None:
            bad |= v > self.high or (self.high_open and v == self.high)
        if self.integer and not bad:
            bad |= not float(v).is_integer()
        if bad:
            raise ActivationError(
                f"hyperparameter {self.name!r}{where} must be {'' if self.integer else 'in '}{self.range_text()}, got {value!r}"
            )
        return int(v) if self.integer else v


@dataclass(frozen=True)
class Kink:
    """A point where f is not differentiable, and the derivative actlab uses there.

    ``left`` and ``right`` are the one-sided derivatives; ``derivative`` is the declared
    convention (the value backward uses at exactly ``x``), matching torch's built-in where
    one exists.  ``jump`` is true where f itself is discontinuous (step, sign).
    """

    x: float
    derivative: float
    left: float
    right: float
    jump: bool = False


@dataclass(frozen=True, eq=False)
class ActivationSpec:
    """One nonlinearity, declared once: forward, analytic derivative and properties.

    Args:
        name: canonical lower-case name (``"leaky_relu"``).
        title: display name (``"Leaky ReLU"``).
        formula: LaTeX of f(x).
        derivative_formula: LaTeX of f'(x).
        forward: ``f(x, p)`` on a torch tensor; must be exact at +-inf and NaN-preserving.
        derivative: ``f'(x)`` from the input, the output or both, see ``derivative_from``.
        derivative_from: which of ``x`` and ``y`` backward must keep (``"output"`` lets
            backward drop the input, as sigmoid's ``y(1-y)`` does).
        vjp: optional fused ``grad * f'`` (e.g. torch's own ``*_backward`` kernel); a test holds
            it equal to ``grad * derivative``.
        forward_inplace: optional ``forward`` that overwrites ``x`` with ``f(x)`` and returns it,
            for callers that own ``x`` and no longer need it (the sweeps' batched engine: no fresh
            buffer, and the data is still in cache); a test holds it equal to ``forward``.
        vjp_inplace: optional ``vjp`` that overwrites ``grad`` with ``grad * f'`` and returns it,
            on the same terms.
        param_grads: for learnable hyperparameters, ``d f / d param`` as a function of ``(x, y, p)``.
        param_vjp: optional fused backward for the input and the learnable hyperparameters at
            once (PReLU: torch's ``_prelu_kernel_backward``), used when a hyperparameter needs a
            gradient; it must equal ``(vjp or grad * derivative, grad * param_grads[name])``.
        params: the hyperparameters.
        aliases: other accepted names.
        output_range: ``(lo, hi)`` of f as a function of the params (inclusive/exclusive is in ``range_text``).
        monotone: f is non-decreasing.
        kinks: the kinks as a function of the params (empty for smooth functions).
        saturates: the side(s) where the activation saturates: f' -> 0 (or is 0 past a clip) while
            the output is held at a level that still carries a signal (sigmoid, tanh: both; ELU,
            GELU: left; ReLU6, hard sigmoid: right, above their upper kink).  A rectifier's zero
            side (f = 0 and f' = 0 on a half-line: ReLU, and ReLU6 and hard sigmoid below their
            lower kink) is not saturation: a unit there is *off* (the probe's inactive and dead
            units), so ReLU is ``"none"``.  Step and sign, with f' = 0 everywhere, are ``"both"``.
        can_die: a unit can get a zero derivative for every input (ReLU-like).
        transcendental: the costly primitives f needs (``exp``, ``log``, ``erf``, ``tanh``...).
        backprop: False for step and sign, whose derivative is zero almost everywhere.
        elementwise: False for maxout, which maps ``k`` inputs to one output.
        group: the hyperparameter that says how many consecutive inputs of the last dimension make
            one output (maxout's ``"pieces"``); ``None``: one output per input.  Read it through
            :meth:`group_size`.
        leak: for rectifiers that are linear on both sides of 0 (the ReLU family), the slope for
            x < 0 as a function of the params (ReLU: 0; leaky ReLU, PReLU: ``negative_slope``;
            RReLU: its mean slope); He et al.'s gain ``sqrt(2 / (1 + a^2))`` takes it.  Read it
            through :meth:`leaky_slope`.
        passthrough: True for identity: ``apply`` returns the input itself (no kernel and no
            autograd node; the gradient passes unchanged, which is the derivative 1), as torch's
            ``nn.Identity`` does.
        builtin: torch's own functional op, if there is one, as ``fn(x, p)``: the oracle in tests
            and the baseline in benchmarks.
        torch_modules: torch module classes that compute this activation, with a function that
            reads their hyperparameters (or returns ``None`` when that instance is not this spec).
        torch_functions: torch functions (``F.gelu``, ``torch.relu``...) that compute it, for the probe.
        note: its known problems and fixes, one line.
        reference: where it was introduced.
        moments_override: for non-elementwise specs, ``(E f, E f^2)`` under N(0, 1) inputs.
        check: a test across hyperparameters (``min_val < max_val``); returns the problem or None.
        class_name: name of the generated module class when the title does not give it.
    """

    name: str
    title: str
    formula: str
    derivative_formula: str
    forward: ForwardFn
    derivative: DerivativeFn
    derivative_from: Literal["input", "output", "both"]
    output_range: Callable[[Params], tuple[float, float]]
    monotone: bool
    saturates: Side
    can_die: bool
    note: str
    reference: str
    params: tuple[HyperParam, ...] = ()
    aliases: tuple[str, ...] = ()
    vjp: VjpFn | None = None
    forward_inplace: ForwardFn | None = None
    vjp_inplace: VjpFn | None = None
    param_grads: Mapping[str, DerivativeFn] = field(default_factory=dict)
    param_vjp: ParamVjpFn | None = None
    kinks: Callable[[Params], tuple[Kink, ...]] = lambda p: ()
    transcendental: tuple[str, ...] = ()
    backprop: bool = True
    elementwise: bool = True
    group: str | None = None
    leak: Callable[[Params], Any] | None = None
    passthrough: bool = False
    builtin: Callable[[Tensor, Params], Tensor] | None = None
    torch_modules: tuple[tuple[type, Callable[[Any], dict | None]], ...] = ()
    torch_functions: tuple[Callable[..., Any], ...] = ()
    moments_override: Callable[[Params], tuple[float, float]] | None = None
    check: Callable[[Params], str | None] | None = None
    class_name: str = ""

    @property
    def cls_name(self) -> str:
        """Name of the generated ``nn.Module`` class (``actlab.nn.LeakyReLU``)."""
        return self.class_name or "".join(ch for ch in self.title if ch.isalnum())

    # ---------------------------------------------------------------- params
    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default if not hp.integer else int(hp.default) for hp in self.params}

    def resolve(self, **values: Any) -> MappingProxyType:
        """Validate hyperparameters and fill in defaults; unknown names raise with the valid ones."""
        known = {hp.name: hp for hp in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ActivationError(
                f"{self.name!r} has no hyperparameter {unknown[0]!r}; valid hyperparameters: {valid}"
            )
        out = self.defaults()
        for k, v in values.items():
            out[k] = known[k].validate(v, self.name)
        if self.check is not None:
            problem = self.check(out)
            if problem:
                raise ActivationError(f"{self.name!r}: {problem}")
        return MappingProxyType(out)

    def group_size(self, p: Mapping[str, Any] | None = None) -> int:
        """Inputs per output unit: 1 for elementwise activations, maxout's ``pieces`` (its
        ``group`` hyperparameter, the default where ``p`` does not give it) otherwise."""
        if self.group is None:
            return 1
        p = p or {}
        return int(p[self.group] if self.group in p else self.defaults()[self.group])

    def leaky_slope(self, p: Mapping[str, Any] | None = None) -> float:
        """The slope for x < 0 of a rectifier (see ``leak``; a learnable slope's mean), 0.0 for
        activations that declare none; ``p`` defaults to the default hyperparameters."""
        if self.leak is None:
            return 0.0
        a = self.leak({**self.defaults(), **dict(p or {})})
        return float(a.detach().double().mean()) if isinstance(a, Tensor) else float(a)

    # ---------------------------------------------------------------- backward
    def backward(self, g: Tensor, x: Tensor | None, y: Tensor | None, p: Params, *,
                 differentiable: bool = False) -> Tensor:
        """``g * f'(x)``: the one backward of this activation, which the generic autograd
        Function (:mod:`actlab.activations.torch`) and the sweeps' batched engine both call.

        Args:
            g: gradient with respect to the output ``y``.
            x, y: the input and ``y = forward(x, p)``; either may be ``None`` where
                ``derivative_from`` does not name it.
            p: resolved hyperparameters (with ``"training"``, and ``SCRATCH`` where a forward
                left a note for this call).
            differentiable: build it as ``g * derivative(x, y, p)`` from differentiable torch
                ops, so that it can itself be differentiated (double backward, ``torch.func``
                transforms); otherwise the fused ``vjp`` where declared.

        Shape: ``g`` has the output's shape, the result the input's (for a ``group`` of ``k``
        the last dimension is ``k`` times longer).
        """
        if self.vjp is not None and not differentiable:
            return self.vjp(g, x, y, p)
        d = self.derivative(x, y, p)
        if self.group is None:
            return g * d
        # d f_j / d x_(jk+i) for each output j: g_j spreads over its k inputs.
        return (g.unsqueeze(-1) * d.unflatten(-1, (-1, self.group_size(p)))).flatten(-2)

    def backward_params(
        self, g: Tensor, x: Tensor | None, y: Tensor | None, p: Params, names: tuple[str, ...] | list[str],
        *, input_grad: bool = True, differentiable: bool = False,
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The input's and the learnable hyperparameters' gradients at once.

        Args:
            g, x, y, p, differentiable: as :meth:`backward`; ``p`` holds the learnable values.
            names: the learnable hyperparameters whose gradient is wanted.
            input_grad: whether ``g * f'(x)`` is wanted too (``None`` in its place when not).

        Returns:
            ``(g * f'(x), {name: sum of g * df/dname over the dims the value broadcast over})``:
            each parameter's gradient has the shape of ``p[name]``.  Uses the fused
            ``param_vjp`` (one kernel) where declared and not ``differentiable``.
        """
        if names and self.param_vjp is not None and not differentiable:
            gx, pg = self.param_vjp(g, x, y, p)
            grads = {n: pg[n] for n in names}
        else:
            gx = self.backward(g, x, y, p, differentiable=differentiable) if input_grad else None
            grads = {n: g * self.param_grads[n](x, y, p) for n in names}
        shapes = {n: p[n].shape if isinstance(p[n], Tensor) else () for n in names}
        return (gx if input_grad else None), {n: v.sum_to_size(shapes[n]) for n, v in grads.items()}

    # ---------------------------------------------------------------- properties
    @property
    def smooth(self) -> bool:
        return not self.kinks(self.defaults())

    @property
    def cost(self) -> str:
        """``"cheap"`` (comparisons and products only) or the transcendental it needs."""
        return "+".join(self.transcendental) if self.transcendental else "cheap"

    @property
    def learnable(self) -> tuple[str, ...]:
        return tuple(hp.name for hp in self.params if hp.learnable)

    @cached_property
    def moments(self) -> Moments:
        """``E[f(z)]``, ``E[f(z)^2]``, ``E[f'(z)]`` and ``E[f'(z)^2]`` for z ~ N(0, 1) at default params."""
        return _moments(self)

    @property
    def zero_centred(self) -> bool:
        """``|E[f(z)]| < 1e-6 * sqrt(E[f(z)^2])`` for z ~ N(0, 1) at default params."""
        m = self.moments
        return _is_zero_centred(m.mean, m.second)

    @cached_property
    def max_abs_derivative(self) -> float:
        """``sup |f'(x)|`` over x away from kinks, at default params (measured on a fine grid)."""
        return _max_abs_derivative(self)

    def range_text(self, p: Params | None = None) -> str:
        lo, hi = self.output_range(p or self.defaults())
        return f"({_fmt(lo)}, {_fmt(hi)})"

    def summary(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The property sheet as plain, JSON-ready data (what ``actlab list --json`` prints).

        Args:
            params: hyperparameters (validated; defaults fill the rest). The fields that depend
                on them (output range, Gaussian moments, zero-centred, kinks, max |f'|) are
                computed at them; each entry of ``"params"`` carries its ``"value"``.
        """
        p = dict(self.resolve(**dict(params or {})))
        at_defaults = p == self.defaults()
        m = self.moments if at_defaults else _moments(self, p)
        kinks = self.kinks(p)
        return {
            "name": self.name,
            "title": self.title,
            "aliases": list(self.aliases),
            "formula": self.formula,
            "derivative_formula": self.derivative_formula,
            "params": [
                {"name": hp.name, "default": hp.default, "value": _plain(p[hp.name]), "range": hp.range_text(),
                 "learnable": hp.learnable, "doc": hp.doc}
                for hp in self.params
            ],
            "output_range": [_json_float(v) for v in self.output_range(p)],
            "zero_centred": _is_zero_centred(m.mean, m.second),
            "mean_std_normal": m.mean,
            "second_moment_std_normal": m.second,
            "monotone": self.monotone,
            "smooth": not kinks,
            "kinks": [
                {"x": k.x, "derivative": k.derivative, "left": k.left, "right": k.right, "jump": k.jump}
                for k in kinks
            ],
            "saturates": self.saturates,
            "can_die": self.can_die,
            "max_abs_derivative": self.max_abs_derivative if at_defaults else _max_abs_derivative(self, p),
            "cost": self.cost,
            "backprop": self.backprop,
            "elementwise": self.elementwise,
            "derivative_from": self.derivative_from,
            "torch_builtin": self.builtin is not None,
            "note": self.note,
            "reference": self.reference,
        }


def _is_zero_centred(mean: float, second: float) -> bool:
    return abs(mean) <= 1e-6 * max(math.sqrt(second), 1e-300)


def _plain(v: Any) -> Any:
    if isinstance(v, Tensor):
        return v.detach().flatten().tolist() if v.numel() > 1 else float(v)
    return v


def _fmt(v: float) -> str:
    from actlab._format import number

    return number(v, 6)


def _json_float(v: float) -> float | str:
    return _fmt(v) if math.isinf(v) else v
