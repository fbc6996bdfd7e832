"""Every property the catalog declares, checked against measurements of the function itself.

The property sheet (``spec.summary()``) is JSON; ``monotone``, ``saturates``, ``zero_centred``,
``output_range``, ``can_die``, ``max_abs_derivative`` and ``backprop`` agree with what f and f'
do on grids and under Gaussian inputs.  Plus the textbook identities the issue names.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from catalog_cases import (
    ELEMENTWISE,
    SPECS,
    f64_derivative,
    f64_forward,
    group_size,
    kink_xs,
    param_sets,
    resolved,
    spec_param_cases,
)
from scipy import integrate

from actlab.activations import ActivationError, apply, get


def _unit_grad(spec, params, v: torch.Tensor) -> torch.Tensor:
    """d f / d(input) of one unit whose inputs all equal v (f' for elementwise specs; for a
    grouped spec the sum over its pieces, i.e. the slope along the diagonal)."""
    k = group_size(spec, params)
    x = v.to(torch.float64).repeat_interleave(k).requires_grad_(True)
    apply(spec, x, **params).sum().backward()
    return x.grad.reshape(-1, k).sum(-1)


def _away_from_kinks(spec, params, x: torch.Tensor, margin: float = 1e-6) -> torch.Tensor:
    for kx in kink_xs(spec, params):
        x = x[(x - kx).abs() > margin]
    return x


# ------------------------------------------------------------------ the identities
def test_sigmoid_derivative_peaks_at_quarter_at_zero():
    s = get("sigmoid")
    x = torch.arange(-200_000, 200_001, dtype=torch.float64) / 10_000  # contains 0 exactly
    d = f64_derivative(s, {}, x)
    i = int(torch.argmax(d))
    assert float(x[i]) == 0.0 and float(d[i]) == 0.25
    assert s.max_abs_derivative == pytest.approx(0.25, abs=1e-12)
    assert s.moments.dmean < 0.25  # the 1/4 bound holds in expectation too


def test_tanh_identities():
    t, s = get("tanh"), get("sigmoid")
    x = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    torch.testing.assert_close(f64_forward(t, {}, x), 2 * f64_forward(s, {}, 2 * x) - 1, rtol=0, atol=1e-15)
    assert float(f64_derivative(t, {}, torch.zeros(1, dtype=torch.float64))[0]) == 1.0
    xg = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    apply(t, xg).sum().backward()
    assert float(xg.grad[0]) == 1.0
    assert t.max_abs_derivative == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.backprop], ids=lambda s: s.name)
def test_no_backprop_specs_have_zero_gradient(spec):
    x = torch.cat([torch.randn(200, dtype=torch.float64) * 5, torch.tensor([0.0, -0.0, 1e4, -1e4]),
                   torch.tensor(kink_xs(spec, {}), dtype=torch.float64)])
    x = x[: len(x) // group_size(spec, {}) * group_size(spec, {})].requires_grad_(True)
    apply(spec, x).sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    assert "backprop" in spec.note.lower()
    assert spec.summary()["backprop"] is False


def test_step_and_sign_are_declared_untrainable():
    untrainable = {s.name for s in SPECS if not s.backprop}
    assert {get("heaviside").name, get("signum").name} <= untrainable


# ------------------------------------------------------------------ the property sheet
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_summary_is_json(spec):
    sheet = spec.summary()
    text = json.dumps(sheet, allow_nan=False)
    back = json.loads(text)
    assert back["name"] == spec.name and back["backprop"] == spec.backprop
    for key in ("output_range", "zero_centred", "monotone", "smooth", "kinks", "saturates", "can_die",
                "max_abs_derivative", "cost", "note", "reference", "mean_std_normal", "second_moment_std_normal"):
        assert key in back, key
    assert spec.note and spec.reference and spec.formula and spec.derivative_formula


@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_monotone_declaration(spec, params):
    """monotone=True: f non-decreasing on a grid at every parameter set.  monotone=False: some
    valid parameter set (default, alternative or a negative learnable slope) makes f decrease."""
    x = torch.linspace(-20, 20, 40_001, dtype=torch.float64)
    k = group_size(spec, params)
    if spec.monotone:
        y = f64_forward(spec, params, x.repeat_interleave(k))
        assert bool((y.diff() >= 0).all()), f"{spec.name} decreases at {params}"
        return
    probes = list(param_sets(spec))
    for hp in spec.params:
        for v in (-0.5, hp.low, hp.high):
            if v is None:
                continue
            try:
                spec.resolve(**{hp.name: v})
            except ActivationError:
                continue
            probes.append({hp.name: v})
    decreasing = [p for p in probes if bool((f64_forward(spec, p, x.repeat_interleave(group_size(spec, p))).diff() < 0).any())]
    assert decreasing, f"{spec.name} declared non-monotone but is non-decreasing at {probes}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_saturation_declaration(spec):
    """saturates: on the declared side(s) |f'| -> 0 (below 1e-6 at |x| = 1e4) while the output is
    not held at 0 there; a side where f = 0 and f' = 0 on a half-line (at x = -+3 and -+4) is a
    rectifier's zero side, where a unit is off (inactive), not saturated.  Step and sign (f' = 0
    everywhere, not trained by backprop) saturate on both sides."""
    d = _unit_grad(spec, {}, torch.tensor([-1e4, 1e4], dtype=torch.float64)).abs()
    f = f64_forward(spec, {}, torch.tensor([-4.0, -3.0, 3.0, 4.0], dtype=torch.float64).repeat_interleave(
        group_size(spec, {})))
    zero_left, zero_right = bool((f[:2] == 0).all()), bool((f[2:] == 0).all())
    if not spec.backprop:
        zero_left = zero_right = False
    left, right = spec.saturates in ("left", "both"), spec.saturates in ("right", "both")
    assert (float(d[0]) < 1e-6 and not zero_left) == left, \
        f"{spec.name}: |f'(-1e4)| = {float(d[0])}, f(-3), f(-4) = 0: {zero_left}, saturates={spec.saturates}"
    assert (float(d[1]) < 1e-6 and not zero_right) == right, \
        f"{spec.name}: |f'(1e4)| = {float(d[1])}, f(3), f(4) = 0: {zero_right}, saturates={spec.saturates}"


def _gaussian_moment(spec, fn) -> float:
    p = resolved(spec, {})
    pts = sorted(kink_xs(spec, {}))
    edges = [-40.0, *pts, 40.0]
    total = 0.0
    for a, b in itertools.pairwise(edges):
        def g(t):
            x = torch.tensor([t], dtype=torch.float64)
            return float(fn(spec.forward(x, p))[0]) * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
        total += integrate.quad(g, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return total


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
def test_moments_and_zero_centred_match_independent_quadrature(spec):
    mean = _gaussian_moment(spec, lambda y: y)
    second = _gaussian_moment(spec, lambda y: y * y)
    m = spec.moments
    assert m.mean == pytest.approx(mean, abs=1e-9)
    assert m.second == pytest.approx(second, rel=1e-9, abs=1e-12)
    assert spec.zero_centred == (abs(mean) <= 1e-6 * math.sqrt(second))
    sheet = spec.summary()
    assert sheet["zero_centred"] == spec.zero_centred and sheet["mean_std_normal"] == m.mean


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.elementwise], ids=lambda s: s.name)
def test_grouped_moments_match_monte_carlo(spec):
    gen = torch.Generator().manual_seed(21)
    k = group_size(spec, {})
    x = torch.randn(400_000 * k, generator=gen, dtype=torch.float64)
    y = f64_forward(spec, {}, x)
    se = float(y.std()) / math.sqrt(y.numel())
    assert spec.moments.mean == pytest.approx(float(y.mean()), abs=6 * se)
    assert spec.moments.second == pytest.approx(float((y * y).mean()), abs=6 * float((y * y).std()) / math.sqrt(y.numel()))
    assert spec.zero_centred == (abs(spec.moments.mean) < 1e-6)


def _range_grid() -> torch.Tensor:
    logs = torch.logspace(-8, 300, 2000, dtype=torch.float64)
    return torch.cat([torch.linspace(-12, 12, 120_001, dtype=torch.float64), logs, -logs])


@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_output_range_contains_outputs_and_is_tight(spec, params):
    """Every sampled output lies in ``output_range``; each finite bound is approached (within
    1e-7), each infinite one is exceeded in magnitude by 1e100: the declared range is the range."""
    p = resolved(spec, params)
    lo, hi = spec.output_range(p)
    x = _range_grid()
    k = group_size(spec, params)
    y = f64_forward(spec, params, x.repeat_interleave(k))
    slack = 1e-12  # a bound measured in float64 is itself rounded
    assert float(y.min()) >= lo - slack and float(y.max()) <= hi + slack, f"{spec.name}: [{y.min()}, {y.max()}] not in ({lo}, {hi})"
    for bound, got in ((lo, float(y.min())), (hi, float(y.max()))):
        if math.isinf(bound):
            assert abs(got) > 1e100 and math.copysign(1, got) == math.copysign(1, bound)
        else:
            assert got == pytest.approx(bound, abs=1e-7 * max(1.0, abs(bound))), f"{spec.name} bound {bound}"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.backprop], ids=lambda s: s.name)
def test_can_die_means_zero_derivative_on_an_interval(spec):
    """can_die: f' is exactly 0 on an interval of length >= 1 inside [-10, 10] (a unit whose
    pre-activations all fall there gets no gradient).  Otherwise f' is never exactly 0 there."""
    x = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    # The analytic derivative, not autograd: torch's fused gelu_backward (tanh form) cancels
    # 1 + tanh to exactly 0 below x ~ -7 in float64, where f' is ~1e-21, not 0.
    d = f64_derivative(spec, {}, x) if spec.elementwise else _unit_grad(spec, {}, x)
    zero = (d == 0).to(torch.int64)
    # longest run of exact zeros, in grid steps of 0.01
    runs, best = 0, 0
    for z in zero.tolist():
        runs = runs + 1 if z else 0
        best = max(best, runs)
    assert (best >= 100) == spec.can_die, f"{spec.name}: longest zero-derivative run {best / 100:g}, can_die={spec.can_die}"
    if not spec.can_die:
        assert best == 0 or set(kink_xs(spec, {})), f"{spec.name}: f' = 0 at isolated points"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_max_abs_derivative_matches_grid(spec):
    x = _away_from_kinks(spec, {}, torch.linspace(-50, 50, 200_001, dtype=torch.float64))
    # One-sided limits at kinks (SELU's sup, lambda alpha, is its slope just left of 0).
    near = [kx + e for kx in kink_xs(spec, {}) for e in (-1e-12, 1e-12)]
    x = torch.cat([x, torch.tensor(near, dtype=torch.float64)])
    measured = float(_unit_grad(spec, {}, x).abs().max())
    assert spec.max_abs_derivative == pytest.approx(measured, rel=1e-6, abs=1e-12)
    assert spec.summary()["max_abs_derivative"] == spec.max_abs_derivative


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_cost_matches_transcendental(spec):
    """cost 'cheap' only without exp/log/erf/tanh; a spec whose forward calls those declares them."""
    sheet = spec.summary()
    assert (sheet["cost"] == "cheap") == (not spec.transcendental)
    assert np.isfinite(sheet["max_abs_derivative"])
