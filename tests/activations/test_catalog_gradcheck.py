"""The analytic backward of every catalog activation against finite differences (float64).

``torch.autograd.gradcheck`` runs ``apply(spec, x)`` (the generic autograd Function whose
backward is the spec's ``vjp``/``derivative``) at random points kept away from the declared
kinks.  Also: learnable hyperparameters' gradients, RReLU's sampled slope in training, and
each fused ``vjp`` against ``grad * derivative``.
"""

from __future__ import annotations

import math

import pytest
import torch
from catalog_cases import (
    DTYPE_IDS,
    DTYPES,
    SPECS,
    WITH_INPLACE,
    WITH_VJP,
    group_size,
    kink_points,
    points_away_from_kinks,
    resolved,
    spec_param_cases,
)

from actlab.activations import apply


@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_gradcheck_input(spec, params):
    x = points_away_from_kinks(spec, params, 24, seed=1).reshape(4, -1).requires_grad_(True)

    def f(x):
        return apply(spec, x, **params)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_gradcheck_large_inputs(spec, params):
    """Far from the origin (|x| ~ 30) the derivative still matches: catches saturation shortcuts."""
    x = points_away_from_kinks(spec, params, 16, scale=30.0, margin=0.5, seed=2).reshape(2, -1)
    assert torch.autograd.gradcheck(lambda x: apply(spec, x, **params), (x.requires_grad_(True),),
                                     eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(("spec", "params"), spec_param_cases([s for s in SPECS if s.learnable]))
@pytest.mark.parametrize("param_shape", ["scalar", "per_channel"])
def test_gradcheck_learnable_params(spec, params, param_shape):
    """Gradients with respect to learnable hyperparameters (PReLU's slope), one or per channel."""
    x = points_away_from_kinks(spec, params, 3 * 4 * 5, seed=3).reshape(3, 4, 5).requires_grad_(True)
    p = resolved(spec, params)
    tensors = []
    for name in spec.learnable:
        v = float(p[name])
        shape = () if param_shape == "scalar" else (4, 1)
        t = (torch.full(shape, v, dtype=torch.float64) + 0.1 * torch.rand(shape, dtype=torch.float64))
        tensors.append(t.requires_grad_(True))
    fixed = {k: v for k, v in params.items() if k not in spec.learnable}

    def f(x, *lp):
        return apply(spec, x, **fixed, **dict(zip(spec.learnable, lp)))

    assert torch.autograd.gradcheck(f, (x, *tensors), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_gradcheck_grouped_pieces(pieces):
    """Grouped specs (maxout) with 1, 2 and 3 pieces: last dim a multiple of pieces."""
    grouped = [s for s in SPECS if not s.elementwise]
    assert grouped, "the catalog declares no grouped activation"
    for spec in grouped:
        params = {"pieces": pieces}
        x = points_away_from_kinks(spec, params, 10, seed=4).reshape(2, 5 * pieces).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x, s=spec, p=params: apply(s, x, **p), (x,), eps=1e-6, atol=1e-7)
        y = apply(spec, x, **params)
        assert y.shape == (2, 5)


def test_rrelu_training_backward_is_sampled_slope():
    """Every spec whose training forward is random: backward uses the slope it sampled (y / x)."""
    random_specs = []
    for spec in SPECS:
        if not spec.elementwise:
            continue
        x = points_away_from_kinks(spec, {}, 200, seed=5)
        a = apply(spec, x, training=True)
        b = apply(spec, x, training=True)
        if not torch.equal(a, b):
            random_specs.append(spec)
    assert random_specs, "expected at least one activation with a random training forward (rrelu)"
    for spec in random_specs:
        p = resolved(spec, {})
        x = points_away_from_kinks(spec, {}, 500, seed=6).requires_grad_(True)
        y = apply(spec, x, training=True)
        y.backward(torch.ones_like(y))
        slope = torch.where(x > 0, torch.ones_like(x), y / x).detach()
        torch.testing.assert_close(x.grad, slope, rtol=1e-12, atol=0)
        neg = x.detach() < 0
        sampled = (y / x).detach()[neg]
        assert sampled.min() >= p["lower"] and sampled.max() <= p["upper"]
        assert sampled.std() > 0, "training slopes should vary"


@pytest.mark.parametrize(("spec", "params"), spec_param_cases(WITH_VJP))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_vjp_equals_grad_times_derivative(spec, params, dtype):
    """A fused ``vjp`` (e.g. torch's ``*_backward`` kernel) equals ``g * derivative`` everywhere,
    including exactly at the kinks, at ties of grouped specs and at large |x|."""
    p = resolved(spec, params)
    k = group_size(spec, params)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(64 * k, generator=gen, dtype=torch.float64) * 4
    extra = [*kink_points(spec, params), 0.0, -30.0, 30.0, -1e4, 1e4]
    x = torch.cat([x, torch.tensor(extra, dtype=torch.float64).repeat_interleave(k)])
    if k > 1:  # ties inside groups
        x = torch.cat([x, torch.tensor([1.0, 1.0, -2.0, -2.0] * k, dtype=torch.float64)])
    x = x.to(dtype)
    y = spec.forward(x, p)
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(dtype)
    got = spec.vjp(g, x, y, p)
    d = spec.derivative(x, y, p)
    want = g * d if spec.elementwise else (g.unsqueeze(-1) * d.unflatten(-1, (-1, k))).flatten(-2)
    # Two float32 formulas for the same f' differ by rounding, worst in cancelling tails
    # (GELU-tanh's 1 + tanh near -5): absolute ~|x| eps against derivatives of order 1.
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=1e-6, atol=atol)


@pytest.mark.parametrize(("spec", "params"), spec_param_cases(WITH_INPLACE))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_inplace_forms_equal_their_out_of_place_forms(spec, params, dtype):
    """``forward_inplace`` and ``vjp_inplace`` write into their argument and match, bit for bit,
    ``forward`` and ``vjp`` (or ``g * derivative``), extremes, NaN and infinities included."""
    p = resolved(spec, params)
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(256, generator=gen, dtype=torch.float64) * 4
    extra = [*kink_points(spec, params), 0.0, -0.0, -30.0, 30.0, -1e4, 1e4, math.inf, -math.inf, math.nan]
    x = torch.cat([x, torch.tensor(extra, dtype=torch.float64)]).to(dtype)
    y = spec.forward(x, p)
    if spec.forward_inplace is not None:
        buf = x.clone()
        out = spec.forward_inplace(buf, p)
        assert out.data_ptr() == buf.data_ptr()
        torch.testing.assert_close(out, y, rtol=0, atol=0, equal_nan=True)
    if spec.vjp_inplace is not None:
        g = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(dtype)
        want = spec.vjp(g, x, y, p) if spec.vjp is not None else g * spec.derivative(x, y, p)
        buf = g.clone()
        out = spec.vjp_inplace(buf, x, y, p)
        assert out.data_ptr() == buf.data_ptr()
        torch.testing.assert_close(out, want, rtol=0, atol=0, equal_nan=True)
