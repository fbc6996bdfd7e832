"""The kink conventions: at each declared ``Kink`` the derivative backward uses is
``Kink.derivative``, the one-sided slopes measured just left and right are ``Kink.left`` and
``Kink.right``, f jumps exactly where ``Kink.jump`` says, and torch's built-in backward (where
there is one) uses the same value at the kink.  Smooth specs declare no kink and have none.
"""

from __future__ import annotations

import pytest
import torch
from catalog_cases import ELEMENTWISE, WITH_KINKS, f64_derivative, f64_forward, kink_xs, resolved, spec_param_cases

from actlab.activations import apply

H = 1e-6


def _f(spec, params, x: float) -> float:
    return float(f64_forward(spec, params, torch.tensor([x], dtype=torch.float64))[0])


def _kink_cases():
    return [c for c in spec_param_cases(WITH_KINKS) if kink_xs(c.values[0], c.values[1])]


@pytest.mark.parametrize(("spec", "params"), _kink_cases())
def test_derivative_at_kink_is_declared_convention(spec, params):
    p = resolved(spec, params)
    for k in spec.kinks(p):
        x = torch.tensor([k.x], dtype=torch.float64)
        assert float(f64_derivative(spec, params, x)[0]) == pytest.approx(k.derivative, abs=1e-15)
        xg = x.clone().requires_grad_(True)
        apply(spec, xg, **params).sum().backward()
        assert float(xg.grad[0]) == pytest.approx(k.derivative, abs=1e-15), f"{spec.name} backward at {k.x}"
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            xd = torch.tensor([k.x], dtype=dtype, requires_grad=True)
            apply(spec, xd, **params).sum().backward()
            assert float(xd.grad[0]) == pytest.approx(k.derivative, rel=1e-2, abs=1e-3), f"{spec.name} {dtype}"


@pytest.mark.parametrize(("spec", "params"), _kink_cases())
def test_one_sided_derivatives_match_left_right(spec, params):
    """Finite differences just left and right of the kink (not across it) give ``left`` and
    ``right``; so does the analytic derivative there.  ``jump`` matches a measured jump of f."""
    p = resolved(spec, params)
    for k in spec.kinks(p):
        right = (_f(spec, params, k.x + 2 * H) - _f(spec, params, k.x + H)) / H
        left = (_f(spec, params, k.x - H) - _f(spec, params, k.x - 2 * H)) / H
        assert right == pytest.approx(k.right, abs=1e-5), f"{spec.name} right slope at {k.x}"
        assert left == pytest.approx(k.left, abs=1e-5), f"{spec.name} left slope at {k.x}"
        d = f64_derivative(spec, params, torch.tensor([k.x - 1e-9, k.x + 1e-9], dtype=torch.float64))
        assert float(d[0]) == pytest.approx(k.left, abs=1e-6) and float(d[1]) == pytest.approx(k.right, abs=1e-6)
        jump = abs(_f(spec, params, k.x + H) - _f(spec, params, k.x - H))
        assert (jump > 1e-3) == k.jump, f"{spec.name}: jump {jump} at {k.x}, declared {k.jump}"
        assert k.jump or k.left != k.right, f"{spec.name}: declared kink at {k.x} has equal one-sided slopes"


@pytest.mark.parametrize(("spec", "params"), _kink_cases())
def test_builtin_backward_at_kink_agrees(spec, params):
    if spec.builtin is None:
        pytest.skip(f"torch has no built-in {spec.name}")
    p = resolved(spec, params)
    for k in spec.kinks(p):
        x = torch.tensor([k.x], dtype=torch.float64, requires_grad=True)
        y = apply(spec, x, impl="builtin", **params)
        try:
            y.sum().backward()
        except RuntimeError as e:  # torch defines no derivative (heaviside): ours must be zero
            assert "not implemented" in str(e) and not spec.backprop and k.derivative == 0
            continue
        assert float(x.grad[0]) == pytest.approx(k.derivative, abs=1e-7), f"torch's {spec.name}'({k.x})"


@pytest.mark.parametrize(("spec", "params"), spec_param_cases(ELEMENTWISE))
def test_no_undeclared_kinks(spec, params):
    """Between declared kinks, f' is continuous: on a fine grid, jumps of the analytic f' between
    neighbours are as small as its smooth variation allows (a missed kink shows up as a step)."""
    kinks = kink_xs(spec, params)
    x = torch.linspace(-12, 12, 80_001, dtype=torch.float64)
    if kinks:
        keep = torch.ones_like(x, dtype=torch.bool)
        for kx in kinks:
            keep &= (x - kx).abs() > 2e-4
        x = x[keep]
    d = f64_derivative(spec, params, x)
    step = (x[1:] - x[:-1])
    jumps = (d[1:] - d[:-1]).abs()
    # Only compare neighbours on the same side of every kink.
    same_side = torch.ones_like(jumps, dtype=torch.bool)
    for kx in kinks:
        same_side &= (x[1:] - kx).sign() == (x[:-1] - kx).sign()
    assert float(jumps[same_side & (step < 4e-4)].max()) < 1e-2, f"{spec.name}: undeclared kink"

