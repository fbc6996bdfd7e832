"""Equality with torch's built-in ops (``spec.builtin``), forward and backward, in four dtypes.

Inputs are finite (torch's built-ins give NaN at +-inf for silu, mish, gelu and softsign,
where the catalog gives the limits; that is tested in ``test_catalog_extremes``), and include
each kink exactly, large magnitudes and values near zero.  RReLU is compared in eval mode.
"""

from __future__ import annotations

import pytest
import torch
from catalog_cases import DTYPE_IDS, DTYPES, SPECS, TOL, WITH_BUILTIN, group_size, kink_points, spec_param_cases

from actlab.activations import apply


def _inputs(spec, params, dtype):
    k = group_size(spec, params)
    gen = torch.Generator().manual_seed(11)
    x = torch.cat([
        torch.randn(256 * k, generator=gen, dtype=torch.float64) * 3,
        torch.randn(32 * k, generator=gen, dtype=torch.float64) * 1e-3,
        torch.tensor([*kink_points(spec, params), 0.0, -0.0, 1.0, -1.0, 8.0, -8.0, 25.0, -25.0, 1e3, -1e3],
                     dtype=torch.float64).repeat_interleave(k),
    ])
    return x.to(dtype)


def _close(got, want, dtype, what, tol=None):
    tol = TOL[dtype] if tol is None else tol
    torch.testing.assert_close(got, want, rtol=tol, atol=tol, equal_nan=True, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("spec", "params"), spec_param_cases(WITH_BUILTIN))
def test_forward_and_backward_equal_builtin(spec, params, dtype):
    x = _inputs(spec, params, dtype)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ya = apply(spec, xa, **params)
    yb = apply(spec, xb, impl="builtin", **params)
    assert ya.dtype == yb.dtype == dtype
    _close(ya, yb, dtype, f"{spec.name} forward")
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64).to(dtype)
    ya.backward(g)
    if not spec.backprop:
        assert torch.count_nonzero(xa.grad) == 0
    try:
        yb.backward(g)
    except RuntimeError as e:  # torch has no derivative for some ops (heaviside)
        assert "not implemented" in str(e) and not spec.backprop
        return
    # torch's float64 hardsigmoid_backward multiplies by the float32 constant 1.0f / 6.0f
    # (3e-8 relative); ours is exact, so float64 backward is compared at 1e-7.
    tol = 1e-7 if dtype == torch.float64 else None
    _close(xa.grad, xb.grad, dtype, f"{spec.name} backward", tol)


@pytest.mark.parametrize("spec", [s for s in WITH_BUILTIN + [s for s in SPECS if s.torch_modules]], ids=lambda s: s.name)
def test_every_activation_torch_has_declares_its_builtin(spec):
    """A spec that maps a torch module must name torch's op, so the equality test covers it."""
    assert spec.builtin is not None
    x = torch.linspace(-3, 3, 7 * group_size(spec, {}), dtype=torch.float64)
    assert apply(spec, x, impl="builtin").shape == apply(spec, x).shape
