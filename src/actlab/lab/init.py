"""Weight initialisation schemes, applied to every Linear, Conv and recurrent weight of a model.

Each scheme draws a layer's weight matrix ``W`` (``out x fan_in``; a conv kernel counts
``in_channels * kernel`` as fan-in) and sets its bias.  Gains that depend on the activation
(He's leaky slope, the critical init's sigma_w^2) read the activation feeding the layer: the
one before it, or for the first layer the one after it, so a per-layer MLP gets per-layer
gains.  Recurrent weights are drawn per gate block (``H x fan_in``), as orthogonal init needs.

Example::

    >>> from actlab.lab.models import MLP
    >>> m = init_weights(MLP(784, 10, depth=3, width=256), "he_normal", seed=0)
    >>> round(float(m.hidden_layers()[1].weight.detach().var()) * 256, 1)
    2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

from actlab.activations import ActivationSpec, get
from actlab.activations.moments import moments

INIT_SCHEMES: dict[str, str] = {
    "zeros": "every weight 0: hidden units stay identical forever (symmetry is never broken)",
    "constant": "every weight = value: units identical, like zeros but with a signal",
    "normal": "N(0, std^2), std fixed (default 0.01, 'small random'), whatever the layer size",
    "uniform_standard": "U[-1/sqrt(fan_in), 1/sqrt(fan_in)], the 'standard' init of Glorot & Bengio (2010)",
    "torch_default": "PyTorch's own reset_parameters (Linear/Conv: weights and biases "
                     "U[-1/sqrt(fan_in), 1/sqrt(fan_in)])",
    "xavier_uniform": "Glorot & Bengio (2010): U[-a, a], a = gain sqrt(6 / (fan_in + fan_out))",
    "xavier_normal": "Glorot & Bengio (2010): N(0, gain^2 2 / (fan_in + fan_out))",
    "he_normal": "He et al. (2015): N(0, 2 / ((1 + a^2) fan)), a = the leaky slope of the activation",
    "he_uniform": "He et al. (2015): U[-b, b], b = sqrt(6 / ((1 + a^2) fan)), a = the leaky slope",
    "lecun_normal": "LeCun et al. (1998): N(0, 1 / fan_in) (SELU's partner)",
    "orthogonal": "Saxe et al. (2014): a random orthogonal matrix times gain",
    "critical": "mean-field critical init: N(0, sigma_w^2 / fan_in), sigma_w^2 where chi_1 = 1 for the activation "
                "(at sigma_b^2 = 0, or the smallest bias variance that has an edge of chaos: GELU)",
    "rai": "Lu et al. (2019) randomized asymmetric init: N(0, 0.36 / fan_in), one entry per unit "
           "(bias included) ~ Beta(2, 1)",
}
BIAS_SCHEMES: dict[str, str] = {
    "zeros": "every bias 0",
    "constant": "every bias = bias_value",
    "normal": "N(0, bias_value^2)",
    "uniform": "U[-1/sqrt(fan_in), 1/sqrt(fan_in)] (PyTorch's default)",
}
RAI_SIGMA = 0.6007  # Lu et al. (2019): the symmetric entries' std times sqrt(fan_in), with P = Beta(2, 1)


class InitError(ValueError):
    """Unknown scheme or bad argument; the message names the value and the choices."""


# ----------------------------------------------------------------------------- activation helpers


def _match(module: nn.Module) -> tuple[ActivationSpec, dict] | None:
    """The activation a module computes, as the probe sees it: the catalog's and torch's modules,
    declared third-party classes, and unknown modules matched on a grid (GPT-2's written-out GELU)."""
    from actlab.probe.attribution import match_module

    got = match_module(module)
    return None if got is None or got[0].name == "identity" else (got[0], got[1])


def _resolve_activation(activation: Any, params: Mapping[str, Any] | None = None) -> tuple[ActivationSpec, dict]:
    if isinstance(activation, nn.Module):
        got = _match(activation)
        if got is None:
            raise InitError(f"cannot tell which activation {type(activation).__name__} computes")
        spec, p = got
        return spec, {**spec.defaults(), **p}
    spec = get(activation)
    return spec, dict(spec.resolve(**dict(params or {})))


def _scalar(v: Any) -> float:
    return float(torch.as_tensor(v, dtype=torch.float64).mean()) if isinstance(v, Tensor) else float(v)


def leaky_slope(activation: Any, params: Mapping[str, Any] | None = None) -> float:
    """The negative-side slope ``a`` He et al.'s gain ``sqrt(2 / (1 + a^2))`` uses (0 for non-leaky)."""
    spec, p = _resolve_activation(activation, params)
    return spec.leaky_slope(p)


def activation_gain(activation: Any, params: Mapping[str, Any] | None = None) -> float:
    """The forward-variance gain ``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1) (:func:`actlab.theory.gain`):
    weights ``N(0, gain^2 / fan_in)`` keep the pre-activations' second moment at 1.  It equals
    torch's ``calculate_gain`` for identity, ReLU and leaky ReLU (``sqrt(2 / (1 + a^2))``)."""
    from actlab.theory import gain

    spec, p = _resolve_activation(activation, params)
    return float(gain(spec, **_plain(p)))


def _plain(p: Mapping[str, Any]) -> dict[str, Any]:
    # A learnable slope (PReLU) is a tensor; the theory takes its mean as the number.
    return {k: _scalar(v) if isinstance(v, Tensor) else v for k, v in p.items() if k != "training"}


def critical_sigma_w2(activation: Any, sigma_b2: float = 0.0, params: Mapping[str, Any] | None = None) -> float:
    """The weight variance (times fan-in) at the edge of chaos, chi_1 = 1, at bias variance
    ``sigma_b2``, from :func:`actlab.theory.critical_sigma_w2` (see :func:`critical_point`).

    Raises:
        InitError: when no sigma_w^2 makes chi_1 = 1 there (GELU at sigma_b2 = 0, step...).
    """
    return critical_point(activation, sigma_b2, params)[0]


def critical_point(activation: Any, sigma_b2: float | None = None, params: Mapping[str, Any] | None = None
                   ) -> tuple[float, float]:
    """``(sigma_w^2, sigma_b^2)`` of the critical init for ``activation``: chi_1 = 1 (the edge of
    chaos) in the mean-field theory, :func:`actlab.theory.critical_point`.

    With ``sigma_b2`` given, the critical sigma_w^2 at that bias variance.  With ``None``: at
    ``sigma_b^2 = 0`` where the activation has an edge of chaos there (ReLU: ``(2, 0)``, tanh:
    ``(1, 0)``), else at the smallest bias variance of :data:`actlab.theory.CRITICAL_SIGMA_B2` that
    has one (GELU, whose chi_1 jumps over 1 at ``sigma_b^2 = 0``).  Maxout (not elementwise,
    outside the 1-D theory) gets ``sigma_w^2 = 1 / (k E[f'^2]) = 1``: each input feeds k pieces,
    each selected with probability 1/k.

    Raises:
        InitError: no critical point (one line: why, and what to use instead).
    """
    spec, p = _resolve_activation(activation, params)
    sb = None if sigma_b2 is None else float(sigma_b2)
    return _critical_cached(spec, tuple(sorted(_plain(p).items())), sb)


@lru_cache(maxsize=256)
def _critical_cached(spec: ActivationSpec, items: tuple, sigma_b2: float | None) -> tuple[float, float]:
    # Cached: a model asks once per layer (per gate block for recurrent nets) and the root
    # finding near q* = 0 (tanh without bias) takes about a second.
    from actlab.theory import TheoryError
    from actlab.theory import critical_point as theory_point

    p = dict(items)
    if not spec.elementwise:
        return 1.0 / (spec.group_size(p) * moments(spec, p).dsecond), (sigma_b2 or 0.0)
    try:
        sw, sb = theory_point(spec, sigma_b2, **p)
        return float(sw), float(sb)
    except TheoryError as e:
        why = str(e)
    instead = "he_, xavier_ or lsuv_ (actlab.init) instead"
    if sigma_b2 is not None:
        try:
            sw, sb = theory_point(spec, None, **p)
            instead = (f"sigma_b2={sb:g} (sigma_w^2 = {sw:.4g} there; sigma_b2=None picks it), or he_, xavier_ "
                       "or lsuv_ instead")
        except TheoryError:
            pass
    where = f"at sigma_b2 = {sigma_b2:g}" if sigma_b2 is not None else "at any sigma_b2 tried"
    raise InitError(f"no critical init for {spec.name!r} {where}: {why}; use {instead}")


# ----------------------------------------------------------------------------- layer discovery


@dataclass
class _Target:
    """One weight block to initialise: a ``rows x fan_in`` view, its bias slice(s), the
    activation whose gain it takes, and (recurrent ``hh`` blocks) a bias to zero."""

    weight: Tensor
    biases: list[Tensor]
    fan_in: int
    fan_out: int
    act: Any
    module: nn.Module
    zero_bias: Tensor | None = None


_RECURRENT = (nn.RNN, nn.GRU, nn.LSTM)


def _is_recurrent(m: nn.Module) -> bool:
    """torch's RNN/GRU/LSTM, or a stack that names its parameters as they do
    (:class:`actlab.lab.models.ElmanRNN`): init reads the layout, not the class, so it needs
    no import of the models that call it."""
    return isinstance(m, _RECURRENT) or hasattr(m, "weight_hh_l0")


def _recurrent_blocks(module: nn.Module) -> Iterator[_Target]:
    if not isinstance(module, _RECURRENT):  # an Elman stack: one gate, its own activation module
        gates, act = 1, module.act
    elif isinstance(module, nn.RNN):
        gates, act = 1, ("relu" if module.nonlinearity == "relu" else "tanh")
    else:
        gates, act = (3 if isinstance(module, nn.GRU) else 4), "tanh"
    H = module.hidden_size
    for layer in range(module.num_layers):
        for kind in ("ih", "hh"):
            w = getattr(module, f"weight_{kind}_l{layer}")
            b = getattr(module, f"bias_{kind}_l{layer}", None)
            for g in range(gates):
                rows = slice(g * H, (g + 1) * H)
                # b_ih and b_hh only ever appear summed: the scheme's bias goes on b_ih, b_hh is 0.
                if kind == "ih":
                    yield _Target(w[rows], [] if b is None else [b[rows]], w.shape[1], H, act, module)
                else:
                    yield _Target(w[rows], [], w.shape[1], H, act, module, zero_bias=b)


def _targets(model: nn.Module) -> list[_Target]:
    order: list[tuple[str, nn.Module]] = []
    skip: set[int] = set()
    for m in model.modules():
        if id(m) in skip:
            continue
        if _is_recurrent(m):
            order.append(("rec", m))
            skip.update(id(c) for c in m.modules())
        elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            order.append(("w", m))
        elif _match(m) is not None:
            order.append(("act", m))
    out: list[_Target] = []
    last_act: Any = None
    for i, (kind, m) in enumerate(order):
        if kind == "act":
            last_act = m
            continue
        if kind == "rec":
            out.extend(_recurrent_blocks(m))
            last_act = getattr(m, "act", "tanh")
            continue
        # A layer's gain is set by the activation feeding it; the first layer borrows the next one's.
        nxt = next((a for k2, a in order[i:] if k2 == "act"), None)
        act = last_act if last_act is not None else (nxt if nxt is not None else "identity")
        w = m.weight
        fan_in = w[0].numel()
        fan_out = w.shape[0] * (w[0, 0].numel() if w.dim() > 2 else 1)
        out.append(_Target(w.view(w.shape[0], -1), [m.bias] if m.bias is not None else [], fan_in, fan_out, act, m))
    return out


# ----------------------------------------------------------------------------- the schemes


def _normal(t: Tensor, std: float, g: torch.Generator | None) -> None:
    t.normal_(0.0, std, generator=g)


def _uniform(t: Tensor, bound: float, g: torch.Generator | None) -> None:
    t.uniform_(-bound, bound, generator=g)


def init_weights(
    model: nn.Module,
    scheme: str,
    *,
    activation: Any = None,
    activation_params: Mapping[str, Any] | None = None,
    gain: float | str | None = None,
    std: float | None = None,
    value: float | None = None,
    mode: str = "fan_in",
    bias: str | float | None = None,
    bias_value: float = 0.0,
    sigma_b2: float | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Initialise every Linear / Conv / recurrent weight of ``model`` with ``scheme``, in place.

    Args:
        model: any ``nn.Module`` (an MLP, SmallCNN, RNNModel or your own).
        scheme: one of :data:`INIT_SCHEMES`.
        activation: the activation the gains assume, for every layer (a name, spec or module).
            Default: read per layer from the model (the activation feeding each layer).
        activation_params: its hyperparameters when ``activation`` is a name.
        gain: multiplies the std / bound of ``xavier_*``, ``lecun_normal``, ``orthogonal``,
            ``uniform_standard`` (default 1) and replaces He's ``sqrt(2 / (1 + a^2))``;
            ``"auto"`` uses :func:`activation_gain` of each layer's activation.
        std: the std of ``"normal"``.  Default: ``0.01``
        value: the weight of ``"constant"`` (required).
        mode: ``"fan_in"`` (preserves forward variance) or ``"fan_out"`` (backward) for He.
        bias: ``"zeros"``, ``"constant"``, ``"normal"``, ``"uniform"`` (see :data:`BIAS_SCHEMES`)
            or a number (a constant).  Default (``None``): zeros, except ``torch_default`` (torch's
            bias), ``rai`` (its own) and ``critical`` (N(0, sigma_b2)).
        bias_value: the constant of ``bias="constant"`` or the std of ``bias="normal"``.
        sigma_b2: the bias variance the critical init assumes (and draws).  Default (``None``): per
            layer, 0 where its activation has an edge of chaos at sigma_b^2 = 0, else the smallest
            bias variance that has one (:func:`critical_point`).
        seed: draw from ``torch.Generator().manual_seed(seed)``; ``None`` uses torch's global RNG.

    Returns:
        ``model``.

    Raises:
        InitError: unknown scheme or bias scheme (naming the valid ones), or a missing argument.
    """
    if scheme not in INIT_SCHEMES:
        import difflib

        close = difflib.get_close_matches(str(scheme), list(INIT_SCHEMES), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InitError(f"unknown init scheme {scheme!r}.{hint} Valid schemes: {', '.join(INIT_SCHEMES)}")
    if isinstance(bias, str) and bias not in BIAS_SCHEMES and bias != "torch_default":
        raise InitError(f"unknown bias init {bias!r}; valid: {', '.join(BIAS_SCHEMES)} or a number")
    if mode not in ("fan_in", "fan_out"):
        raise InitError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if scheme == "constant" and value is None:
        raise InitError("init scheme 'constant' needs value= (the weight of every connection)")
    if scheme == "normal":
        std = 0.01 if std is None else float(std)
        if not std >= 0:
            raise InitError(f"std must be >= 0, got {std!r}")
    if isinstance(gain, str) and gain != "auto":
        raise InitError(f"gain must be a number or 'auto', got {gain!r}")
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    fixed_act = None if activation is None else _resolve_activation(activation, activation_params)

    targets = _targets(model)
    with torch.no_grad():
        if scheme == "torch_default":
            _torch_default(model, targets, seed)
        for t in targets:
            spec, p = fixed_act if fixed_act is not None else _resolve_activation(t.act)
            w = t.weight
            fan = t.fan_in if mode == "fan_in" else t.fan_out
            mult = 1.0 if gain is None else (activation_gain(spec, p) if gain == "auto" else float(gain))
            layer_b2 = 0.0  # the critical init's bias variance for this layer
            if scheme == "zeros":
                w.zero_()
            elif scheme == "constant":
                w.fill_(float(value))  # type: ignore[arg-type]
            elif scheme == "normal":
                _normal(w, std, g)  # type: ignore[arg-type]
            elif scheme == "uniform_standard":
                _uniform(w, mult / math.sqrt(t.fan_in), g)
            elif scheme == "xavier_uniform":
                _uniform(w, mult * math.sqrt(6.0 / (t.fan_in + t.fan_out)), g)
            elif scheme == "xavier_normal":
                _normal(w, mult * math.sqrt(2.0 / (t.fan_in + t.fan_out)), g)
            elif scheme in ("he_normal", "he_uniform"):
                he_gain = math.sqrt(2.0 / (1.0 + leaky_slope(spec, p) ** 2)) if gain is None else mult
                if scheme == "he_normal":
                    _normal(w, he_gain / math.sqrt(fan), g)
                else:
                    _uniform(w, he_gain * math.sqrt(3.0 / fan), g)
            elif scheme == "lecun_normal":
                _normal(w, mult / math.sqrt(t.fan_in), g)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(w, gain=mult, generator=g)
            elif scheme == "critical":
                sw2, layer_b2 = critical_point(spec, sigma_b2, p)
                _normal(w, math.sqrt(sw2 / t.fan_in), g)
            elif scheme == "rai":
                _rai(t, g)
            _init_bias(t, scheme, bias, bias_value, layer_b2, g)
    return model


def _torch_default(model: nn.Module, targets: list[_Target], seed: int | None) -> None:
    mods: list[nn.Module] = []
    for t in targets:
        if t.module not in mods:
            mods.append(t.module)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        for m in mods:
            if _is_recurrent(m) or hasattr(m, "reset_parameters"):
                m.reset_parameters()


def _rai(t: _Target, g: torch.Generator | None) -> None:
    rows, fan_in = t.weight.shape
    has_bias = bool(t.biases)
    v = torch.empty(rows, fan_in + int(has_bias))
    v.normal_(0.0, RAI_SIGMA / math.sqrt(fan_in), generator=g)
    k = torch.randint(0, v.shape[1], (rows,), generator=g)
    # Beta(2, 1) has CDF x^2, so sqrt(U) is a Beta(2, 1) draw.
    pos = torch.rand(rows, generator=g).sqrt()
    v[torch.arange(rows), k] = pos
    t.weight.copy_(v[:, :fan_in].to(t.weight.dtype))
    if has_bias:
        t.biases[0].copy_(v[:, fan_in].to(t.biases[0].dtype))


def _init_bias(t: _Target, scheme: str, bias: str | float | None, value: float, sigma_b2: float,
               g: torch.Generator | None) -> None:
    zero_bias = t.zero_bias
    if bias is None:
        if scheme == "torch_default":
            return
        if scheme == "rai":  # the bias was drawn with the weights
            if zero_bias is not None:
                zero_bias.zero_()
            return
        if scheme == "critical":
            bias, value = "normal", math.sqrt(sigma_b2)
        else:
            bias = "zeros"
    if bias == "torch_default":
        bias = "uniform"
    if zero_bias is not None:  # b_hh of a recurrent layer: the scheme's bias lives on b_ih
        zero_bias.zero_()
    for b in t.biases:
        if isinstance(bias, (int, float)):
            b.fill_(float(bias))
        elif bias == "zeros":
            b.zero_()
        elif bias == "constant":
            b.fill_(float(value))
        elif bias == "normal":
            _normal(b, float(value), g)
        elif bias == "uniform":
            _uniform(b, 1.0 / math.sqrt(t.fan_in), g)


# ----------------------------------------------------------------------------- by name, in place


def critical_(model: nn.Module, *, sigma_b2: float | None = None, seed: int | None = None) -> nn.Module:
    """Re-initialise every layer at the edge of chaos for the activation feeding it:
    ``W ~ N(0, sigma_w^2 / fan_in)``, biases ``N(0, sigma_b^2)``, with ``(sigma_w^2, sigma_b^2)``
    the mean-field critical point (chi_1 = 1) of :func:`critical_point`.  In place; returns ``model``.

    Args:
        model: the model.
        sigma_b2: the bias variance, for every layer.  Default (``None``): per layer, 0 where its
            activation has an edge of chaos there (ReLU: sigma_w^2 = 2; tanh: 1), else the
            smallest bias variance that has one: GELU's chi_1 jumps over 1 at sigma_b^2 = 0 (its
            q* switches between 0 and inf), so its layers get a small bias variance and the
            critical sigma_w^2 there (:func:`critical_point` gives the numbers).
        seed: draw from ``torch.Generator().manual_seed(seed)``; ``None`` uses torch's global RNG.

    Raises:
        InitError: a layer's activation has no critical point (step, sign: no derivative).

    Example::

        >>> import actlab.init
        >>> actlab.init.critical_(model)    # ReLU layers get sigma_w^2 = 2, tanh layers 1
    """
    return init_weights(model, "critical", sigma_b2=sigma_b2, seed=seed)


def he_(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """He normal per layer (``N(0, 2 / ((1 + a^2) fan_in))``, a = the layer's leaky slope), biases 0."""
    return init_weights(model, "he_normal", seed=seed)


def xavier_(model: nn.Module, *, seed: int | None = None) -> nn.Module:
    """Xavier normal with each layer's activation gain (:func:`activation_gain`: 5/3-like for
    tanh, sqrt 2 for ReLU), biases 0."""
    return init_weights(model, "xavier_normal", gain="auto", seed=seed)


def lsuv_(model: nn.Module, x: Any, *, tol: float = 0.05, max_iter: int = 10, seed: int | None = None) -> nn.Module:
    """Layer-sequential unit variance (Mishkin & Matas 2016): orthogonal weights, then, layer by
    layer from the input, the weight rescaled until the layer's output on ``x`` has variance 1.

    Args:
        model: the model; its RNG state and buffers (BatchNorm statistics) are left as they were.
        x: a batch (a tensor, or a tuple of the model's arguments).
        tol: stop when ``|var - 1| < tol``. Default: ``0.05``.
        max_iter: rescalings per layer at most. Default: ``10``.
        seed: for the orthogonal draw (``None``: torch's global RNG).
    """
    if not isinstance(tol, (int, float)) or tol <= 0:
        raise InitError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InitError(f"max_iter must be a positive integer, got {max_iter!r}")
    init_weights(model, "orthogonal", seed=seed)
    args = x if isinstance(x, tuple) else (x,)
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for layer in layers:
                seen: list[Tensor] = []
                h = layer.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
                try:
                    for _ in range(max_iter):
                        seen.clear()
                        model(*args)
                        if not seen:
                            break  # the layer did not run on this input
                        var = float(torch.cat([o.reshape(-1) for o in seen]).var())
                        if not math.isfinite(var) or var == 0 or abs(var - 1.0) < tol:
                            break
                        layer.weight.div_(math.sqrt(var))
                finally:
                    h.remove()
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])
    return model


__all__ = [
    "BIAS_SCHEMES", "INIT_SCHEMES", "InitError", "RAI_SIGMA", "activation_gain", "critical_", "critical_point",
    "critical_sigma_w2",
    "he_", "init_weights", "leaky_slope", "lsuv_", "xavier_",
]
