"""Cases for the catalog tests, all derived from the registry (no activation names here).

A new ``ActivationSpec`` in the catalog is covered by every test without editing one: the
hyperparameter sets, sample points (kept away from kinks), limits and tolerances below are
computed from the spec's own declarations.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from actlab.activations import ActivationError, ActivationSpec, apply, specs

SPECS = specs()
ELEMENTWISE = [s for s in SPECS if s.elementwise]
WITH_BUILTIN = [s for s in SPECS if s.builtin is not None]
WITH_VJP = [s for s in SPECS if s.vjp is not None]
WITH_INPLACE = [s for s in SPECS if s.forward_inplace is not None or s.vjp_inplace is not None]

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
DTYPE_IDS = ["f16", "bf16", "f32", "f64"]

# Agreement between two correct implementations of the same formula: a few ulps, relative to
# max(|value|, 1) (values near 0 are compared absolutely at the same scale).
ULPS = 4
TOL = {dt: ULPS * torch.finfo(dt).eps for dt in DTYPES}
TOL[torch.float64] = 1e-12  # libm differences between torch's kernels and ours stay far below this


def _candidates(hp) -> list[float]:
    d = float(hp.default)
    if hp.integer:
        return [d + 1, d + 2, d - 1]
    out = [d * 2, d / 2, d + 0.5, d - 0.5, d + 0.1, d - 0.1, -d]
    if hp.low is not None and hp.high is not None:
        out += [hp.low + 0.3 * (hp.high - hp.low), hp.low + 0.7 * (hp.high - hp.low)]
    return [v for v in out if v != d]


def alt_params(spec: ActivationSpec) -> dict[str, Any] | None:
    """A valid non-default value for every hyperparameter at once (None for specs without any)."""
    if not spec.params:
        return None
    chosen: dict[str, Any] = {}
    for i, hp in enumerate(spec.params):
        cands = _candidates(hp)
        if i % 2 and len(cands) > 1:  # move paired bounds (min_val/max_val) in opposite ways
            cands[0], cands[1] = cands[1], cands[0]
        for v in cands:
            try:
                spec.resolve(**{**chosen, hp.name: v})
            except ActivationError:
                continue
            chosen[hp.name] = int(v) if hp.integer else v
            break
    spec.resolve(**chosen)
    return chosen


def param_sets(spec: ActivationSpec) -> list[dict[str, Any]]:
    """Defaults, plus one set with every hyperparameter moved off its default."""
    out: list[dict[str, Any]] = [{}]
    alt = alt_params(spec)
    if alt:
        out.append(alt)
    return out


def spec_param_cases(pool: list[ActivationSpec] | None = None) -> list:
    """``pytest.param(spec, params)`` for every spec in ``pool`` and each of its parameter sets."""
    cases = []
    for s in SPECS if pool is None else pool:
        for i, p in enumerate(param_sets(s)):
            cases.append(pytest.param(s, p, id=f"{s.name}-{'default' if i == 0 else 'alt'}"))
    return cases


def resolved(spec: ActivationSpec, params: dict[str, Any], training: bool = False) -> dict[str, Any]:
    p = dict(spec.resolve(**params))
    p["training"] = training
    return p


def kink_xs(spec: ActivationSpec, params: dict[str, Any]) -> list[float]:
    return [float(k.x) for k in spec.kinks(resolved(spec, params))]


def group_size(spec: ActivationSpec, params: dict[str, Any]) -> int:
    """Inputs per output unit: 1 for elementwise specs, ``pieces`` for maxout-like ones."""
    return 1 if spec.elementwise else int(resolved(spec, params)["pieces"])


def points_away_from_kinks(
    spec: ActivationSpec,
    params: dict[str, Any],
    n: int,
    *,
    scale: float = 3.0,
    margin: float = 0.05,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> torch.Tensor:
    """``n`` random inputs (times the group size) at least ``margin`` from every kink.

    For grouped specs (maxout) the pieces of each group are kept ``margin`` apart, so the
    maximum is unique and f is differentiable there.
    """
    gen = torch.Generator().manual_seed(seed)
    k = group_size(spec, params)
    kinks = torch.tensor(kink_xs(spec, params), dtype=torch.float64)
    x = torch.randn(n, k, generator=gen, dtype=torch.float64) * scale
    for _ in range(100):
        bad = torch.zeros(n, dtype=torch.bool)
        if len(kinks):
            bad |= ((x.unsqueeze(-1) - kinks).abs() < margin).flatten(1).any(-1)
        if k > 1:
            srt = x.sort(-1).values
            bad |= (srt.diff(dim=-1) < margin).any(-1)
        if not bad.any():
            break
        x[bad] = torch.randn(int(bad.sum()), k, generator=gen, dtype=torch.float64) * scale
    else:  # pragma: no cover - only with absurd kink density
        raise RuntimeError(f"could not place points away from {spec.name}'s kinks")
    return x.flatten().to(dtype)


def kink_points(spec: ActivationSpec, params: dict[str, Any]) -> list[float]:
    return [x for x in kink_xs(spec, params) if math.isfinite(x)]


def f64_forward(spec: ActivationSpec, params: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return apply(spec, x.to(torch.float64), **params)


def f64_derivative(spec: ActivationSpec, params: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    """f'(x) in float64 from the spec's ``derivative`` (elementwise specs)."""
    p = resolved(spec, params)
    x = x.to(torch.float64)
    with torch.no_grad():
        y = spec.forward(x, p)
        return spec.derivative(x, y, p)


def limit_at(spec: ActivationSpec, params: dict[str, Any], side: int) -> float:
    """lim f(x) for x -> side * inf, measured in float64 at |x| = 1e300 (inf when f grows without bound)."""
    x = torch.full((group_size(spec, params),), side * 1e300, dtype=torch.float64)
    v = float(f64_forward(spec, params, x)[0])
    if abs(v) > 1e200:
        return math.copysign(math.inf, v)
    return v


WITH_KINKS = [s for s in SPECS if any(kink_xs(s, p) for p in param_sets(s))]
