"""Theory against measurement: per-layer gradient norms of a freshly initialised MLP, measured
with the probe's quantities (:mod:`actlab.probe.quantities`), and the lab's one-batch gradient
measurement of an MLP (:func:`layer_gradients`).

It sits in the lab, above the probe and the theory, because it builds and measures models; the
theory keeps only the mean-field maths it is held against.

The network: input ``x ~ N(0, q_in I)`` of dimension ``width``; ``depth`` hidden layers
``u^l = W^l h^{l-1} + b^l``, ``h^l = f(u^l)`` (plain :class:`torch.nn.Linear` and the catalog's
activation module); a readout ``u^{L+1} = W^{L+1} h^L + b^{L+1}`` of the same width and init;
weights ``N(0, sigma_w^2 / fan_in)``, biases ``N(0, sigma_b^2)``.  The loss is
``sum_b r_b . u^{L+1}_b`` with fixed ``r ~ N(0, I)``, so the gradient arriving at the output is
exactly ``r`` (no dependence on a target or a loss curvature).

What is compared, per hidden layer l: the RMS over the batch of the per-example norm of the
gradient w.r.t. the layer's **pre-activations**, ``||dL/du^l||_F / sqrt(batch)``.  Mean-field
theory predicts ``||r||_F / sqrt(batch) * prod_{k=l}^{L} sqrt(chi(q_k))`` with
``chi(q) = sigma_w^2 E[f'(sqrt(q) z)^2]`` and each layer's own variance ``q_k`` from the length
map started at ``q_1 = sigma_w^2 q_in + sigma_b^2`` (see :func:`gradient_profile`).  Using
``q_k`` rather than ``q*`` matters: the first layers are not at the fixed point yet.

The weight gradient (the probe's ``weight_grad_norm``, no bias: what the theory's
``||dL/dW^l|| ~ ||delta^l|| ||h^{l-1}||`` is about; ``dL/dW^l = sum_b delta^l_b h^{l-1 T}_b``) also
scales with the norm of the layer's input and with how correlated the examples are (the
correlation map), so it is not the clean quantity to hold against ``chi``; :class:`Comparison`
reports it measured, for reference.  Every comparison of a weight gradient with the theory reads
``weight_grad_norm``, never ``param_grad_norm`` (weights and bias together): the bias gradient
``sum_b delta^l_b`` is no part of the prediction, and where it dominates (ReLU at init, tiny
weights) the two part by decades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from actlab.activations import Activation, get
from actlab.plot.style import ACCENT, DF_COLOR, F_COLOR, figure, save, style
from actlab.probe import Probe
from actlab.probe.quantities import module_derivative
from actlab.probe.quantities.out_grad_norm import output_grad_norm
from actlab.probe.quantities.param_grad_norm import param_grad_norm
from actlab.probe.quantities.weight_grad_norm import is_weight, weight_grad_norm
from actlab._threads import torch_threads
from actlab.theory.meanfield import (
    _act,
    _check_q,
    _check_sigmas,
    check_depth,
    gradient_profile,
)

__all__ = ["DOC_SETTINGS", "Comparison", "LayerGradients", "build_mlp", "compare", "compare_many", "gradient_figure",
           "layer_gradients", "measure_gradients", "measure_gradients_probe", "measured_figure"]


@dataclass(frozen=True)
class Comparison:
    """Predicted and measured per-layer gradient norms (index 0 is hidden layer 1).

    ``measured`` is the root mean square over seeds (theory predicts the expected *squared* norm,
    so this is the matching estimator), ``measured_std`` the standard deviation over seeds,
    ``ratio = measured / predicted``; ``max_deviation = max |ratio - 1|``; ``weight_grad`` the
    norm of each hidden layer's weight gradient, no bias (the probe's ``weight_grad_norm``; RMS
    over seeds), for reference.
    """

    activation: str
    params: dict
    sigma_w2: float
    sigma_b2: float
    depth: int
    width: int
    batch: int
    seeds: int
    predicted: np.ndarray
    measured: np.ndarray
    measured_std: np.ndarray
    weight_grad: np.ndarray
    ratio: np.ndarray = field(init=False)
    max_deviation: float = field(init=False)

    def __post_init__(self) -> None:
        r = self.measured / self.predicted
        object.__setattr__(self, "ratio", r)
        object.__setattr__(self, "max_deviation", float(np.max(np.abs(r - 1.0))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "activation": self.activation, "params": self.params, "sigma_w2": self.sigma_w2,
            "sigma_b2": self.sigma_b2, "depth": self.depth, "width": self.width, "batch": self.batch,
            "seeds": self.seeds, "quantity": "RMS over the batch of ||dL/du^l|| (pre-activation gradient)",
            "predicted": self.predicted.tolist(), "measured": self.measured.tolist(),
            "measured_std": self.measured_std.tolist(), "ratio": self.ratio.tolist(),
            "weight_grad": self.weight_grad.tolist(), "max_deviation": self.max_deviation,
        }


def build_mlp(activation: str, width: int, depth: int, sigma_w2: float, sigma_b2: float = 0.0,
              generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
              **params: Any) -> nn.Sequential:
    """``depth`` x (Linear(width, width), activation), then a Linear(width, width) readout, with
    weights ``N(0, sigma_w2 / width)`` and biases ``N(0, sigma_b2)``."""
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    depth = check_depth(depth)
    model = _skeleton(get(activation), width, depth, dtype, params)
    _init(model, _standard_draws(width, depth, generator, dtype), sw, sb)
    return model


def _skeleton(spec: Any, width: int, depth: int, dtype: torch.dtype, params: dict) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, dtype=dtype), Activation(spec, **params)]
    layers.append(nn.Linear(width, width, dtype=dtype))
    for p in (q for m in layers for q in m.parameters()):
        p.requires_grad_(False)  # only the pre-activation gradients are wanted: skip dL/dW
    # Eval mode: the deterministic f the theory assumes (RReLU uses its mean slope).
    return nn.Sequential(*layers).eval()


def _standard_draws(width: int, depth: int, generator: torch.Generator | None,
                    dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(width, width, generator=generator, dtype=dtype),
             torch.randn(width, generator=generator, dtype=dtype)) for _ in range(depth + 1)]


def _init(model: nn.Sequential, draws: list[tuple[torch.Tensor, torch.Tensor]], sw: float, sb: float) -> None:
    # One set of standard-normal draws per seed, scaled per setting: every setting in a sweep
    # sees the same random matrices, and the draws (the slow part on CPU) happen once.
    with torch.no_grad():
        for m, (w, b) in zip((m for m in model if isinstance(m, nn.Linear)), draws):
            m.weight.copy_(w).mul_(math.sqrt(sw / m.in_features))
            m.bias.copy_(b).mul_(math.sqrt(sb))


def measure_gradients(model: nn.Sequential, x: torch.Tensor, out_grad: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagate ``out_grad`` from the model's output and return, per hidden Linear layer
    (all but the last): the RMS over the batch of ``||dL/du^l||`` (pre-activation gradient: the
    probe's ``out_grad_norm`` of the Linear layer over ``sqrt(batch)``), and the layer's
    ``weight_grad_norm`` (no bias) computed from the batch Gram matrices without forming the
    weights' gradients, ``||sum_b delta_b h_b^T||_F^2 = sum_{b,b'} (delta_b . delta_b') (h_b . h_b')``."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    ins: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []

    def keep(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if out.requires_grad:
            out.retain_grad()
        ins.append(inp[0].detach())
        outs.append(out)

    handles = [m.register_forward_hook(keep) for m in linears[:-1]]
    try:
        x = x.detach().requires_grad_(True)  # so that a graph exists even with frozen weights
        y = model(x)
        y.backward(out_grad)
    finally:
        for h in handles:
            h.remove()
    b = x.shape[0]
    pre, wg = [], []
    for h, u in zip(ins, outs):
        d = u.grad.double()
        pre.append(float(output_grad_norm(d)) / math.sqrt(b))
        hd = h.double()
        wg.append(math.sqrt(max(float(((d @ d.T) * (hd @ hd.T)).sum()), 0.0)))
    return np.asarray(pre), np.asarray(wg)


def measure_gradients_probe(model: nn.Sequential, x: torch.Tensor, out_grad: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """:func:`measure_gradients` read through :class:`actlab.probe.Probe` (``param_outputs=True``:
    the output-gradient norm of each Linear layer is ``||dL/du^l||``; its ``weight_grad_norm`` the
    same weight norm).  Same numbers (a test holds them equal); slower, since the probe
    needs the weights' gradients too.  The probe records training-mode forwards, so RReLU samples
    its slopes here; use ``"hooks"`` for it."""
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    try:
        model.zero_grad(set_to_none=True)
        with Probe(model, param_outputs=True, quantities=()) as probe:
            model.train()
            model(x).backward(out_grad)
            records = [r for r in probe.records() if r.kind == "parametrised"]
        hidden = records[: len([m for m in model if isinstance(m, nn.Linear)]) - 1]
        b = x.shape[0]
        pre = np.array([r.out_grad_norm for r in hidden]) / math.sqrt(b)
        wg = np.array([r.weight_grad_norm for r in hidden])
    finally:
        model.eval()
        for p in params:
            p.requires_grad_(False)
            p.grad = None
    return pre, wg


@dataclass
class LayerGradients:
    """What one backward pass of a lab MLP shows, per layer (output layer last in the norms).

    Attributes:
        weight_grad_norms: the probe's ``weight_grad_norm`` of every Linear layer (its weight
            matrix, no bias), input to output: what to hold against mean-field theory.
        param_grad_norms: the probe's ``param_grad_norm`` of every Linear layer, weights and bias
            together, input to output.
        pre: each hidden layer's pre-activations ``z_l`` ``(N, units)``.
        derivative: ``f'(z_l)`` of each hidden layer's activation ``(N, units)`` (elementwise only).
        loss: the loss the gradients are of.
    """

    weight_grad_norms: list[float]
    param_grad_norms: list[float]
    pre: list[Tensor]
    derivative: list[Tensor]
    loss: float


def layer_gradients(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy") -> LayerGradients:
    """One forward/backward pass of ``model`` (an :class:`~actlab.lab.models.MLP`) on ``(x, y)``.

    The mean loss over the batch is differentiated; the model's ``.grad`` fields are left as they
    were (the gradients are taken with :func:`torch.autograd.grad`), so it can run mid-training.

    Args:
        model: an MLP (needs ``forward_all``, ``linear_layers`` and ``activations``).
        x: inputs ``(N, in_features)``.
        y: class labels ``(N,)`` for ``"cross_entropy"``, targets for ``"mse"``.
        loss: ``"cross_entropy"`` (default) or ``"mse"``.
    """
    if loss not in ("cross_entropy", "mse"):
        raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
    layers = model.linear_layers()
    out, pre, _ = model.forward_all(x)
    value = F.cross_entropy(out, y) if loss == "cross_entropy" else F.mse_loss(out, y)
    tensors = [[p for p in (lin.weight, lin.bias) if p is not None and p.requires_grad] for lin in layers]
    grads = torch.autograd.grad(value, [p for ts in tensors for p in ts])
    norms, wnorms, k = [], [], 0
    for ts in tensors:
        gs = grads[k:k + len(ts)]
        norms.append(float(param_grad_norm(*gs)))
        ws = [g for t, g in zip(ts, gs) if is_weight(t)]
        wnorms.append(float(weight_grad_norm(*ws)) if ws else math.nan)  # NaN: a frozen weight
        k += len(ts)
    derivs = [module_derivative(a, z.detach()) for a, z in zip(model.activations(), pre) if a.spec.elementwise]
    return LayerGradients(weight_grad_norms=wnorms, param_grad_norms=norms, pre=[z.detach() for z in pre],
                          derivative=derivs, loss=float(value.detach()))


def compare(activation: str, sigma_w2: float, sigma_b2: float = 0.0, depth: int = 20, width: int = 1000,
            seeds: int = 5, batch: int = 32, q_in: float = 1.0, dtype: torch.dtype = torch.float32,
            threads: int | None = None, measure: str = "hooks", **params: Any) -> Comparison:
    """Measure per-layer pre-activation gradient norms at initialisation and predict them.

    Args:
        activation: catalog name (elementwise, with a derivative).
        sigma_w2: weight variance times fan-in.
        sigma_b2: bias variance. Default: ``0``.
        depth: hidden layers. Default: ``20``.
        width: units per layer (and input dimension). Default: ``1000``.
        seeds: independent networks averaged (seed ``s`` draws weights, input and ``r``). Default: ``5``.
        batch: examples per network. Default: ``32``.
        q_in: second moment of the input coordinates. Default: ``1``.
        dtype: of the network. Default: ``torch.float32``.
        threads: torch threads for the run (``None``: leave as is). Default: ``None``.
        measure: ``"hooks"`` (forward hooks + ``retain_grad``, no weight gradients) or
            ``"probe"`` (:class:`actlab.probe.Probe`); same numbers. Default: ``"hooks"``.
        **params: the activation's hyperparameters.

    Example::

        >>> cmp = compare("relu", 2.0, depth=5, width=200, seeds=2)
        >>> bool(cmp.max_deviation < 0.1)
        True
    """
    return compare_many([(activation, sigma_w2, sigma_b2, params)], depth, width, seeds, batch, q_in, dtype,
                        threads, measure)[0]


def compare_many(settings: Sequence[tuple[str, float, float, dict]], depth: int = 20, width: int = 1000,
                 seeds: int = 5, batch: int = 32, q_in: float = 1.0,
                 dtype: torch.dtype = torch.float32, threads: int | None = None,
                 measure: str = "hooks") -> list[Comparison]:
    """:func:`compare` for several ``(activation, sigma_w2, sigma_b2, params)`` settings, sharing
    each seed's random draws (weights, input, ``r``) across the settings.

    ``threads``: torch intra-op threads for the run (restored after).  On a busy machine 1 is
    much faster than oversubscribed threads spinning against each other.
    """
    if measure not in ("hooks", "probe"):
        raise ValueError(f"measure must be 'hooks' or 'probe', got {measure!r}")
    fn = measure_gradients if measure == "hooks" else measure_gradients_probe
    with torch_threads(threads):
        return _compare_many(settings, depth, width, seeds, batch, q_in, dtype, fn)


def _compare_many(settings: Sequence[tuple[str, float, float, dict]], depth: int, width: int, seeds: int,
                  batch: int, q_in: float, dtype: torch.dtype, measure_fn: Any) -> list[Comparison]:
    depth = check_depth(depth)
    q_in = _check_q(q_in)
    for name, v in (("width", width), ("seeds", seeds), ("batch", batch)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    prepared = []
    for activation, sigma_w2, sigma_b2, params in settings:
        a = _act(activation, params)
        sw, sb = _check_sigmas(sigma_w2, sigma_b2)
        prof = gradient_profile(a.spec, sw, sb, depth, q_in, **a.public_params())
        prepared.append((a, sw, sb, prof, _skeleton(a.spec, width, depth, dtype, a.public_params())))
    measured = [[] for _ in prepared]
    wgrads = [[] for _ in prepared]
    scale = []
    for s in range(seeds):
        g = torch.Generator().manual_seed(1000 + s)
        draws = _standard_draws(width, depth, g, dtype)
        x = torch.randn(batch, width, generator=g, dtype=dtype) * math.sqrt(q_in)
        r = torch.randn(batch, width, generator=g, dtype=dtype)
        scale.append(float(r.double().norm()) / math.sqrt(batch))
        for i, (a, sw, sb, _, model) in enumerate(prepared):
            _init(model, draws, sw, sb)
            pre, wg = measure_fn(model, x, r)
            measured[i].append(pre)
            wgrads[i].append(wg)
    out = []
    for (a, sw, sb, prof, _), m, wg in zip(prepared, measured, wgrads):
        m = np.asarray(m)
        out.append(Comparison(
            activation=a.spec.name, params=a.public_params(), sigma_w2=sw, sigma_b2=sb, depth=depth, width=width,
            batch=batch, seeds=seeds, predicted=float(np.sqrt(np.mean(np.square(scale)))) * prof,
            measured=np.sqrt(np.mean(m * m, axis=0)), measured_std=m.std(axis=0),
            weight_grad=np.sqrt(np.mean(np.square(wg), axis=0)),
        ))
    return out


def gradient_figure(comparisons: Sequence[Comparison], out: str | Path | None = None) -> Figure:
    """One panel per activation: measured per-layer pre-activation gradient norms (markers, mean
    over seeds with the seed spread) on the predicted line, one colour per ``sigma_w^2``; below,
    measured / predicted."""
    acts = list(dict.fromkeys(c.activation for c in comparisons))
    colors = [F_COLOR, DF_COLOR, ACCENT, "#CC79A7", "#E69F00", "#56B4E9"]
    with style():
        fig = figure(4.0 * len(acts), 5.6)
        grid = fig.add_gridspec(2, len(acts), height_ratios=[3, 1.2])
        for j, act in enumerate(acts):
            ax = fig.add_subplot(grid[0, j])
            axr = fig.add_subplot(grid[1, j], sharex=ax)
            cs = [c for c in comparisons if c.activation == act]
            for k, c in enumerate(cs):
                col = colors[k % len(colors)]
                layers = np.arange(1, c.depth + 1)
                lab = rf"$\sigma_w^2$={c.sigma_w2:g}" + (rf", $\sigma_b^2$={c.sigma_b2:g}" if c.sigma_b2 else "")
                ax.plot(layers, c.predicted, color=col, lw=1.6, label=lab + " (theory)")
                ax.errorbar(layers, c.measured, yerr=c.measured_std, fmt="o", ms=3.5, color=col, mfc="white",
                            capsize=0, lw=0.8)
                axr.plot(layers, c.ratio, "o-", ms=3, lw=0.8, color=col,
                         label=f"max dev {100 * c.max_deviation:.1f}%")
            ax.set_yscale("log")
            ax.set_title(f"{act}: width {cs[0].width}, {cs[0].seeds} seeds")
            ax.set_ylabel(r"RMS $\|\partial L / \partial u^l\|$" if j == 0 else "")
            ax.legend(fontsize=7, loc="best")
            axr.axhspan(0.9, 1.1, color="#999999", alpha=0.15, lw=0)
            axr.axhline(1.0, color="black", lw=0.8)
            axr.set_ylim(0.85, 1.15)
            axr.set_xlabel("hidden layer l")
            axr.set_ylabel("measured / theory" if j == 0 else "")
            axr.legend(fontsize=7, loc="lower right")
        fig.suptitle("Gradient norms at initialisation: mean-field prediction (lines) vs measurement (dots)")
        if out is not None:
            save(fig, out)
    return fig


DOC_SETTINGS: tuple[tuple[str, float, float, dict], ...] = (
    ("tanh", 1.0, 0.0, {}), ("tanh", 1.5, 0.05, {}), ("tanh", 2.5, 0.0, {}),
    ("relu", 1.5, 0.0, {}), ("relu", 2.0, 0.0, {}), ("relu", 2.5, 0.1, {}),
    ("sigmoid", 1.0, 0.0, {}), ("sigmoid", 4.0, 0.0, {}), ("sigmoid", 16.0, 0.0, {}),
)
"""The settings of ``docs/theory_vs_measured.png`` and of the acceptance test."""


def measured_figure(out: str | Path, settings: Sequence[tuple[str, float, float, dict]] = DOC_SETTINGS,
                    depth: int = 20, width: int = 1000, seeds: int = 5, batch: int = 32,
                    threads: int | None = 1) -> list[Comparison]:
    """Measure ``settings`` (see :func:`compare_many`), write the figure to ``out``, return the data.

    ``python -c "from actlab.lab.compare import measured_figure as m; m('docs/theory_vs_measured.png')"``
    regenerates the docs figure (about 20 s on 2 CPU cores).
    """
    cs = compare_many(settings, depth=depth, width=width, seeds=seeds, batch=batch, threads=threads)
    gradient_figure(cs, out=out)
    return cs
