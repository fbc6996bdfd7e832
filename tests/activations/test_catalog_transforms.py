"""``torch.func`` transforms and double backward through the generic autograd Function, for every
catalog activation that backpropagates (float64, at points away from the declared kinks).

- ``vmap`` equals a Python loop over the batch (also with a batched learnable slope);
- ``torch.func.grad`` and ``jacrev`` equal ``torch.autograd.grad`` of the same function;
- ``gradgradcheck``: the backward is itself differentiable (create_graph), against finite
  differences of the analytic backward; and ``grad(grad(f))`` equals it;
- the backward that the Function and the sweep engine share (``ActivationSpec.backward``) gives
  the same numbers on its fused and its differentiable path.

Specs without backprop (step, sign: f' = 0 almost everywhere, ``spec.backprop`` is False) are
skipped with that reason.
"""

from __future__ import annotations

import pytest
import torch
from catalog_cases import SPECS, group_size, points_away_from_kinks, resolved, spec_param_cases

from actlab.activations import apply

BACKPROP = [s for s in SPECS if s.backprop]


def cases(pool=None) -> list:
    """Every spec in ``pool`` (default: the registry) and parameter set; those without backprop
    are skipped with the reason."""
    out = []
    for c in spec_param_cases(SPECS if pool is None else pool):
        spec = c.values[0]
        if not spec.backprop:
            reason = f"{spec.name}: f' = 0 almost everywhere (spec.backprop is False), nothing to differentiate"
            c = pytest.param(*c.values, id=c.id, marks=pytest.mark.skip(reason=reason))
        out.append(c)
    return out


def _x(spec, params, rows: int = 3, per_row: int = 4, seed: int = 11, scale: float = 3.0) -> torch.Tensor:
    """``(rows, per_row * k)`` float64 points away from kinks (k: the spec's group size)."""
    k = group_size(spec, params)
    return points_away_from_kinks(spec, params, rows * per_row, scale=scale, seed=seed).reshape(rows, per_row * k)


def _f(spec, params):
    return lambda t: apply(spec, t, **params)


@pytest.mark.parametrize(("spec", "params"), cases())
def test_vmap_equals_the_loop(spec, params):
    x = _x(spec, params)
    f = _f(spec, params)
    got = torch.func.vmap(f)(x)
    want = torch.stack([f(row) for row in x])
    # one call on the whole batch against one per row: a vectorised kernel's main loop and its
    # scalar tail may round the same element differently (an ulp)
    torch.testing.assert_close(got, want, rtol=1e-15, atol=1e-300)
    if group_size(spec, params) == 1:  # the batch dim elsewhere than in front
        torch.testing.assert_close(torch.func.vmap(f, in_dims=1, out_dims=1)(x), f(x), rtol=1e-15, atol=1e-300)
    x3 = torch.stack([x, 2 * x])
    torch.testing.assert_close(torch.func.vmap(torch.func.vmap(f))(x3), torch.stack([f(x), f(2 * x)]),
                               rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize(("spec", "params"), cases())
def test_func_grad_and_jacrev_equal_autograd(spec, params):
    x = _x(spec, params)
    f = _f(spec, params)
    w = torch.linspace(-1, 1, f(x).numel(), dtype=torch.float64).reshape(f(x).shape)

    def loss(t):
        return (f(t) * w).sum()

    xa = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(loss(xa), xa)
    # (the transforms take the backward's differentiable form, autograd its fused kernels: the
    # two agree to rounding, relative to max(|f'|, 1) as everywhere in the catalog tests)
    torch.testing.assert_close(torch.func.grad(loss)(x), want, rtol=1e-12, atol=1e-12)
    row = x[0]
    jac = torch.func.jacrev(f)(row)
    rows = []
    for i in range(f(row).numel()):
        r = row.clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(f(r).reshape(-1)[i], r)
        rows.append(gi)
    torch.testing.assert_close(jac.reshape(len(rows), -1), torch.stack(rows), rtol=1e-12, atol=1e-12)
    # jacfwd is not supported: the Function declares no jvp (forward mode is not promised).


@pytest.mark.parametrize(("spec", "params"), cases())
def test_gradgradcheck(spec, params):
    x = _x(spec, params, rows=2, per_row=6).requires_grad_(True)
    assert torch.autograd.gradgradcheck(_f(spec, params), (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("spec", "params"), cases([s for s in SPECS if s.elementwise]))
def test_grad_of_grad_is_the_derivative_of_the_derivative(spec, params):
    """``grad(grad(f))`` at scalar points (elementwise specs) equals autograd's double backward,
    and both equal finite differences of the analytic derivative."""
    xs = points_away_from_kinks(spec, params, 8, seed=12, margin=0.05)
    f = _f(spec, params)
    d2 = torch.func.vmap(torch.func.grad(torch.func.grad(f)))(xs)
    xa = xs.clone().requires_grad_(True)
    (d1,) = torch.autograd.grad(f(xa).sum(), xa, create_graph=True)
    # (piecewise-linear f: f' is a mask that no graph leads back from, so f'' is 0)
    want = torch.autograd.grad(d1.sum(), xa)[0] if d1.requires_grad else torch.zeros_like(xs)
    torch.testing.assert_close(d2, want, rtol=1e-12, atol=1e-12)
    p = resolved(spec, params)
    h = 1e-6

    def deriv(t):
        return spec.derivative(t, spec.forward(t, p), p)

    fd = (deriv(xs + h) - deriv(xs - h)) / (2 * h)
    torch.testing.assert_close(d2, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "params"), cases([s for s in SPECS if s.learnable]))
def test_learnable_params_double_backward_and_batched_slope(spec, params):
    x = _x(spec, params, rows=3, per_row=4).requires_grad_(True)
    p = resolved(spec, params)
    vals = {n: (torch.full((4,), float(p[n]), dtype=torch.float64) + 0.05 * torch.arange(4)).requires_grad_(True)
            for n in spec.learnable}

    def f(t, *vs):
        return apply(spec, t, **{**params, **dict(zip(vals, vs))})

    assert torch.autograd.gradgradcheck(f, (x, *vals.values()), eps=1e-6, atol=1e-6, rtol=1e-5)
    # one slope per example: vmap over (x, slope) equals the loop
    batched = {n: torch.stack([v.detach(), 1.5 * v.detach()]) for n, v in vals.items()}
    xb = torch.stack([x.detach(), -x.detach()])
    got = torch.func.vmap(f)(xb, *batched.values())
    want = torch.stack([f(xb[i], *(b[i] for b in batched.values())) for i in range(2)])
    torch.testing.assert_close(got, want, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize(("spec", "params"), cases())
def test_shared_backward_fused_equals_differentiable(spec, params):
    x = _x(spec, params, rows=2, per_row=8, scale=5.0)
    p = resolved(spec, params)
    for n in spec.learnable:
        p[n] = torch.tensor(float(p[n]), dtype=torch.float64)
    y = spec.forward(x, p)
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    fused = spec.backward(g, x, y, p)
    plain = spec.backward(g, x, y, p, differentiable=True)
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-12)
    if spec.learnable:
        gx, pg = spec.backward_params(g, x, y, p, spec.learnable)
        gx2, pg2 = spec.backward_params(g, x, y, p, spec.learnable, differentiable=True)
        torch.testing.assert_close(gx, gx2, rtol=1e-12, atol=1e-12)
        for n in spec.learnable:
            assert pg[n].shape == p[n].shape
            torch.testing.assert_close(pg[n], pg2[n], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("spec", "params"), cases())
def test_per_sample_gradients_of_a_model(spec, params):
    """The common use: per-example gradients of a small net (``vmap(grad(...))`` over
    ``functional_call``) equal one autograd backward per example."""
    from actlab.nn import module_class

    torch.manual_seed(0)
    k = group_size(spec, params)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4 * k), module_class(spec)(**params), torch.nn.Linear(4, 1)).double()
    net.eval()  # RReLU: its mean slope (training samples a new slope per call)
    xs = torch.randn(5, 3, dtype=torch.float64)
    weights = {n: p.detach() for n, p in net.named_parameters()}

    def loss(w, x):
        return torch.func.functional_call(net, w, (x.unsqueeze(0),)).square().sum()

    got = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(weights, xs)
    for i in range(len(xs)):
        want = torch.autograd.grad(loss(dict(net.named_parameters()), xs[i]), list(net.parameters()))
        for (n, g), w in zip(got.items(), want):
            torch.testing.assert_close(g[i], w, rtol=1e-12, atol=1e-12, msg=f"{spec.name} {n}")
