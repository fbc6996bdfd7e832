"""Dying ReLU at birth: how likely a freshly initialised ReLU-family MLP is a constant function.

Lu, Shin, Su & Karniadakis (2019, "Dying ReLU and initialization: theory and numerical
examples") call a network *born dead* on an input domain when it is constant there; they prove
that with weights and biases from symmetric distributions this happens with probability -> 1 as
depth grows at fixed width, and that narrow deep nets (width 3, depth 10) die with large
probability.

Here the probability is estimated by vectorised Monte Carlo: ``trials`` networks
``d_in -> width -> ... -> width`` (``depth`` hidden layers) are drawn at once, a grid of probe
inputs on ``[-domain, domain]^d_in`` goes through all of them, and a network counts as dead
when some hidden layer has ``f'(u) = 0`` for every unit on every probe (every unit inactive by
the catalog's one rule, :func:`actlab.activations.regions.inactive_units`, so that layer's
output, and everything after it, is constant).  That covers any activation that can die (``spec.can_die``:
ReLU, ReLU6, hardtanh, hard sigmoid...), using the catalog's own derivative.  The interval is
Wilson's score interval.

With ``d_in = 1`` and ``depth = 1`` the answer is exact: a unit is dead on ``[-D, D]`` iff
``D |w| + b <= 0``, so ``P = (atan(sigma_b / (D sigma_w)) / pi) ^ width`` for normal weights and
biases (:func:`exact_single_layer`), which the tests hold the estimate against.  Finite probes
can only miss a live region, so deeper estimates are upper bounds that tighten with ``inputs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from actlab.activations import get
from actlab.activations.regions import inactive_units
from actlab._threads import torch_threads
from actlab.theory.meanfield import TheoryError, check_depth

__all__ = ["INITS", "BornDead", "born_dead", "born_dead_table", "exact_single_layer", "wilson_interval"]

INITS: dict[str, tuple[str, str]] = {
    # name: (distribution, variance rule); the variance of a weight as a function of fan-in/out.
    "he_normal": ("normal", "2/fan_in"),
    "he_uniform": ("uniform", "2/fan_in"),
    "xavier_normal": ("normal", "2/(fan_in+fan_out)"),
    "xavier_uniform": ("uniform", "2/(fan_in+fan_out)"),
    "lecun_normal": ("normal", "1/fan_in"),
    "lecun_uniform": ("uniform", "1/fan_in"),
    "normal": ("normal", "sigma_w2/fan_in"),
    "uniform": ("uniform", "sigma_w2/fan_in"),
}
"""Weight initialisations: ``"normal"``/``"uniform"`` take ``sigma_w2``; the uniform ones are
``U(-a, a)`` with the same variance (``a = sqrt(3 var)``).  Symmetric, as in Lu et al."""


def _variance(rule: str, fan_in: int, fan_out: int, sigma_w2: float) -> float:
    return {
        "2/fan_in": 2.0 / fan_in,
        "2/(fan_in+fan_out)": 2.0 / (fan_in + fan_out),
        "1/fan_in": 1.0 / fan_in,
        "sigma_w2/fan_in": sigma_w2 / fan_in,
    }[rule]


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` at confidence ``level``.

    Example::

        >>> lo, hi = wilson_interval(0, 100)
        >>> lo == 0.0 and 0.03 < hi < 0.04
        True
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends: no rounding residue at 0 or n
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class BornDead:
    """Monte Carlo estimate of the probability that a network is born dead."""

    activation: str
    params: dict
    depth: int
    width: int
    d_in: int
    init: str
    sigma_w2: float | None
    sigma_b2: float
    domain: float
    inputs: int
    trials: int
    dead: int
    probability: float
    ci_low: float
    ci_high: float
    level: float
    dead_layer_hist: list  # trials whose first dead layer is l (index l - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exact_single_layer(width: int, sigma_w2: float, sigma_b2: float, domain: float = 1.0) -> float:
    """Exact born-dead probability of a one-hidden-layer ReLU net on ``[-domain, domain]``
    (``d_in = 1``), weights ``N(0, sigma_w2)`` and biases ``N(0, sigma_b2)``:
    ``(atan(sigma_b / (domain sigma_w)) / pi) ^ width``."""
    if sigma_b2 == 0:
        return 0.0
    return (math.atan(math.sqrt(sigma_b2) / (domain * math.sqrt(sigma_w2))) / math.pi) ** width


def _probes(d_in: int, inputs: int, domain: float, g: torch.Generator) -> torch.Tensor:
    if d_in == 1:
        return torch.linspace(-domain, domain, inputs, dtype=torch.float64)[:, None]
    pts = [(torch.rand(inputs, d_in, generator=g, dtype=torch.float64) * 2 - 1) * domain]
    if 2**d_in <= inputs:  # the cube's corners: where a linear unit on the cube peaks
        corners = torch.cartesian_prod(*[torch.tensor([-domain, domain], dtype=torch.float64)] * d_in)
        pts.append(corners.reshape(-1, d_in))
    return torch.cat(pts)


def born_dead(activation: str = "relu", depth: int = 10, width: int = 3, *, d_in: int = 1,
              init: str = "he_normal", sigma_w2: float | None = None, sigma_b2: float = 0.0,
              trials: int = 10_000, inputs: int = 256, domain: float = 1.0, seed: int = 0,
              level: float = 0.95, threads: int | None = 1, **params: Any) -> BornDead:
    """Probability that a ``depth`` x ``width`` MLP of ``activation`` is born dead.

    Args:
        activation: a catalog activation that can die (``spec.can_die``). Default: ``"relu"``.
        depth: hidden layers (>= 1). Default: ``10``.
        width: units per hidden layer. Default: ``3``.
        d_in: input dimension. Default: ``1``.
        init: weight initialisation, one of :data:`INITS`. Default: ``"he_normal"``.
        sigma_w2: weight variance x fan-in for ``init="normal"``/``"uniform"``.
        sigma_b2: bias variance (biases ``N(0, sigma_b2)``; ``0``: zero biases). Default: ``0``.
        trials: networks drawn. Default: ``10000``.
        inputs: probe inputs on ``[-domain, domain]^d_in``. Default: ``256``.
        domain: half-width of the input cube. Default: ``1``.
        seed: of the draws. Default: ``0``.
        level: confidence level of the Wilson interval. Default: ``0.95``.
        threads: torch threads while drawing (``None``: leave as is); the many tiny batched
            matmuls gain nothing from more. Default: ``1``.

    Example::

        >>> r = born_dead("relu", depth=10, width=3, trials=2000)
        >>> r.ci_low > 0.3
        True
    """
    spec = get(activation)
    if not spec.can_die:
        raise TheoryError(
            f"{spec.name!r} cannot die (its derivative is never 0 on a whole region); born-dead "
            "analysis covers activations with spec.can_die, e.g. relu, relu6, hardtanh")
    if not spec.elementwise or not spec.backprop:
        raise TheoryError(f"{spec.name!r} is not supported by the born-dead estimate")
    depth = check_depth(depth)
    for name, v in (("width", width), ("d_in", d_in), ("trials", trials), ("inputs", inputs)):
        if int(v) != v or v < 1:
            raise TheoryError(f"{name} must be a whole number >= 1, got {v!r}")
    if init not in INITS:
        raise TheoryError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    dist, rule = INITS[init]
    if rule.startswith("sigma_w2") and (sigma_w2 is None or not (math.isfinite(sigma_w2) and sigma_w2 > 0)):
        raise TheoryError(f"init {init!r} needs sigma_w2 > 0, got {sigma_w2!r}")
    if not (math.isfinite(sigma_b2) and sigma_b2 >= 0):
        raise TheoryError(f"sigma_b2 must be finite and >= 0, got {sigma_b2!r}")
    if not (math.isfinite(domain) and domain > 0):
        raise TheoryError(f"domain must be > 0, got {domain!r}")
    p = dict(spec.resolve(**params))
    p["training"] = False

    with torch_threads(threads):
        dead, first_dead, n_inputs = _simulate(spec, p, depth, int(width), int(d_in), dist, rule, sigma_w2,
                                               float(sigma_b2), int(trials), int(inputs), float(domain), seed)
    lo, hi = wilson_interval(dead, trials, level)
    return BornDead(
        activation=spec.name, params={k: v for k, v in p.items() if k != "training"}, depth=depth, width=int(width),
        d_in=int(d_in), init=init, sigma_w2=sigma_w2, sigma_b2=float(sigma_b2), domain=float(domain),
        inputs=n_inputs, trials=int(trials), dead=dead, probability=dead / trials, ci_low=lo, ci_high=hi,
        level=level, dead_layer_hist=first_dead.tolist(),
    )


def _simulate(spec: Any, p: dict, depth: int, width: int, d_in: int, dist: str, rule: str, sigma_w2: float | None,
              sigma_b2: float, trials: int, inputs: int, domain: float, seed: int) -> tuple[int, np.ndarray, int]:
    g = torch.Generator().manual_seed(seed)
    x = _probes(int(d_in), int(inputs), float(domain), g)
    # Chunk the trials so a (chunk, inputs, width) tensor stays near 4M elements.
    chunk = max(1, min(trials, 4_000_000 // (x.shape[0] * max(width, d_in))))
    first_dead = np.zeros(depth, dtype=np.int64)
    dead = 0
    done = 0
    while done < trials:
        t = min(chunk, trials - done)
        h = x.expand(t, *x.shape)
        alive = t  # dead networks stay dead: only the live ones go on to the next layer
        for layer in range(depth):
            fan_in = d_in if layer == 0 else width
            var = _variance(rule, fan_in, width, sigma_w2 or 0.0)
            if dist == "normal":
                w = torch.randn(alive, fan_in, width, generator=g, dtype=torch.float64) * math.sqrt(var)
            else:
                a = math.sqrt(3 * var)
                w = (torch.rand(alive, fan_in, width, generator=g, dtype=torch.float64) * 2 - 1) * a
            b = torch.randn(alive, 1, width, generator=g, dtype=torch.float64) * math.sqrt(sigma_b2)
            u = torch.baddbmm(b, h, w)
            y = spec.forward(u, p)
            d = spec.derivative(u, y, p)
            # (trials, probes, units): a layer is dead when every unit is inactive on every probe
            layer_dead = inactive_units(d.abs(), sample_dims=1).all(dim=1)
            n_dead = int(layer_dead.sum())
            first_dead[layer] += n_dead
            dead += n_dead
            h = y[~layer_dead]
            alive -= n_dead
            if alive == 0:
                break
        done += t
    return dead, first_dead, int(x.shape[0])


def born_dead_table(activation: str = "relu", depths: Sequence[int] = (1, 2, 5, 10, 20, 50),
                    widths: Sequence[int] = (2, 3, 4, 5, 10, 20), trials: int = 2000, **kw: Any) -> list[BornDead]:
    """:func:`born_dead` over ``depths`` x ``widths`` (row-major: depth outer)."""
    return [born_dead(activation, d, w, trials=trials, **kw) for d in depths for w in widths]
