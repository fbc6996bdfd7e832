"""The generated ``nn.Module`` classes, validation messages, name lookup, NumPy inputs, and
maxout's composition with a Linear layer."""

from __future__ import annotations

import difflib
import math

import numpy as np
import pytest
import torch
from catalog_cases import SPECS, alt_params, group_size, points_away_from_kinks, resolved
from torch import nn

import actlab.functional
import actlab.nn
from actlab.activations import ActivationError, apply, get, names, spec_for_module
from actlab.nn import module_class


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_module_builds_with_defaults_and_matches_functional(spec):
    cls = module_class(spec)
    assert getattr(actlab.nn, spec.cls_name) is cls
    m = cls()
    assert m.training
    x = torch.randn(3, 4 * group_size(spec, {}), dtype=torch.float32)
    torch.testing.assert_close(m.eval()(x), apply(spec, x.clone()), rtol=0, atol=0)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        assert m(x.to(dtype)).dtype == dtype
    torch.testing.assert_close(getattr(actlab.functional, spec.name)(x), apply(spec, x), rtol=0, atol=0)
    assert cls.__doc__ and spec.formula in cls.__doc__
    assert spec_for_module(m)[0] is spec


@pytest.mark.parametrize("spec", [s for s in SPECS if s.params], ids=lambda s: s.name)
def test_extra_repr_shows_hyperparameters(spec):
    params = alt_params(spec)
    fixed = {k: v for k, v in params.items() if k not in spec.learnable}
    m = module_class(spec)(**params)
    text = repr(m)
    for name, value in fixed.items():
        assert f"{name}={value:g}" in text, text
    if spec.learnable:
        assert "num_parameters=1" in text


@pytest.mark.parametrize("spec", [s for s in SPECS if s.learnable], ids=lambda s: s.name)
def test_learnable_hyperparameters_are_parameters(spec):
    m = module_class(spec)(num_parameters=5)
    params = dict(m.named_parameters())
    assert set(params) == set(spec.learnable)
    defaults = spec.defaults()
    for name in spec.learnable:
        assert isinstance(params[name], nn.Parameter) and params[name].shape == (5,)
        assert torch.all(params[name] == defaults[name])
    with pytest.raises(ActivationError, match="num_parameters"):
        module_class(spec)(num_parameters=0)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # output keeps the input's dtype
        x = torch.randn(2, 5, 3).to(dtype).requires_grad_(True)
        y = m(x)
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad.dtype == dtype
        assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in m.parameters())
        m.zero_grad()


def test_prelu_per_channel_matches_torch():
    """actlab's learnable-slope module with num_parameters=C against torch's nn.PReLU(C): same
    forward, input gradient and slope gradient on (N, C, H, W) and (N, C) inputs."""
    spec = get("prelu")
    C = 6
    ours = module_class(spec)(num_parameters=C).double()
    ref = nn.PReLU(C).double()
    w = torch.linspace(-0.3, 0.6, C, dtype=torch.float64)
    with torch.no_grad():
        getattr(ours, spec.learnable[0]).copy_(w)
        ref.weight.copy_(w)
    for shape in [(2, C, 3, 4), (5, C)]:
        x = torch.randn(*shape, dtype=torch.float64)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = ours(xa), ref(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-15, atol=0)
        g = torch.randn_like(ya)
        ya.backward(g)
        yb.backward(g)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-15, atol=0)
        torch.testing.assert_close(getattr(ours, spec.learnable[0]).grad, ref.weight.grad, rtol=1e-12, atol=1e-14)
        ours.zero_grad()
        ref.zero_grad()
    assert spec_for_module(ref)[0] is spec


def _bad_values(hp):
    out = []
    if hp.low is not None:
        out.append(hp.low if hp.low_open else hp.low - 1)
    if hp.high is not None:
        out.append(hp.high if hp.high_open else hp.high + 1)
    if hp.integer:
        out.append(hp.default + 0.5)
    out += [math.nan, "abc"]
    return out


@pytest.mark.parametrize("spec", [s for s in SPECS if s.params], ids=lambda s: s.name)
def test_bad_hyperparameter_error_names_it_and_its_range(spec):
    for hp in spec.params:
        for bad in _bad_values(hp):
            with pytest.raises(ActivationError) as err:
                module_class(spec)(**{hp.name: bad})
            msg = str(err.value)
            assert hp.name in msg and hp.range_text() in msg, msg
            with pytest.raises(ActivationError):
                apply(spec, torch.zeros(2 * group_size(spec, {})), **{hp.name: bad})
    with pytest.raises(ActivationError) as err:
        module_class(spec)(no_such_param=1.0)
    assert all(hp.name in str(err.value) for hp in spec.params)


def test_cross_parameter_checks():
    """Specs with a cross-parameter check (min_val < max_val, lower <= upper) reject swapped bounds."""
    checked = [s for s in SPECS if s.check is not None]
    assert checked
    for spec in checked:
        a, b = (hp.name for hp in spec.params[:2])
        d = spec.defaults()
        with pytest.raises(ActivationError) as err:
            spec.resolve(**{a: d[b] + 0.5 if d[b] + 0.5 <= (spec.params[0].high or math.inf) else d[b], b: d[a]})
        assert a in str(err.value) and b in str(err.value)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_unknown_name_lists_valid_names_and_closest_match(spec):
    typo = spec.name[:-1] + ("x" if spec.name[-1] != "x" else "y")
    lookup = [n for s in SPECS for n in (s.name, *s.aliases)]
    expected = difflib.get_close_matches(typo, lookup, n=1, cutoff=0.5)
    with pytest.raises(ActivationError) as err:
        get(typo)
    msg = str(err.value)
    assert typo in msg and all(n in msg for n in names())
    if expected:
        assert f"Did you mean {get(expected[0]).name!r}" in msg
    assert get(spec.name.upper()) is spec and get(spec.name.replace("_", "-")) is spec
    for alias in spec.aliases:
        assert get(alias) is spec


@pytest.mark.parametrize("np_dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_numpy_in_numpy_out(spec, np_dtype):
    k = group_size(spec, {})
    x = points_away_from_kinks(spec, {}, 6, seed=31).numpy().astype(np_dtype)
    y = apply(spec, x)
    assert isinstance(y, np.ndarray) and y.dtype == np_dtype and y.shape == (6,)
    want = apply(spec, torch.from_numpy(x))
    np.testing.assert_array_equal(y, want.numpy())
    y2 = module_class(spec)().eval()(x)
    assert isinstance(y2, np.ndarray) and y2.dtype == np_dtype
    np.testing.assert_array_equal(y2, y)
    assert isinstance(getattr(actlab.functional, spec.name)(x.reshape(2, 3 * k)), np.ndarray)


# ------------------------------------------------------------------ maxout
GROUPED = [s for s in SPECS if not s.elementwise]


@pytest.mark.parametrize("spec", GROUPED, ids=lambda s: s.name)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_maxout_after_linear_has_k_times_the_parameters(spec, k):
    n, m = 7, 5
    layer = nn.Sequential(nn.Linear(n, m * k), module_class(spec)(pieces=k))
    plain = nn.Linear(n, m)
    assert sum(p.numel() for p in layer.parameters()) == k * sum(p.numel() for p in plain.parameters())
    assert layer(torch.randn(3, n)).shape == (3, m)


@pytest.mark.parametrize("spec", GROUPED, ids=lambda s: s.name)
def test_maxout_generalises_relu_and_identity(spec):
    relu = next(s for s in SPECS if s.name == get("rectifier").name)
    identity = get("linear")
    x = torch.randn(4, 10, dtype=torch.float64)
    pairs = torch.stack([x, torch.zeros_like(x)], -1).flatten(-2).requires_grad_(True)  # [x, 0] pairs
    y = apply(spec, pairs, pieces=2)
    torch.testing.assert_close(y, apply(relu, x), rtol=0, atol=0)
    y.sum().backward()
    torch.testing.assert_close(pairs.grad[..., 0::2], (x > 0).double(), rtol=0, atol=0)
    torch.testing.assert_close(apply(spec, x, pieces=1), apply(identity, x), rtol=0, atol=0)
    with pytest.raises(ActivationError, match="multiple of pieces"):
        apply(spec, torch.zeros(2, 5), pieces=2)


@pytest.mark.parametrize("spec", GROUPED, ids=lambda s: s.name)
def test_maxout_ties_send_gradient_to_first_piece(spec):
    for k in (2, 3):
        x = torch.tensor([[1.0] * k, [-2.0] * k], dtype=torch.float64).flatten().requires_grad_(True)
        apply(spec, x, pieces=k).sum().backward()
        want = torch.zeros(2, k, dtype=torch.float64)
        want[:, 0] = 1
        torch.testing.assert_close(x.grad, want.flatten(), rtol=0, atol=0)


def test_resolve_fills_defaults():
    for spec in SPECS:
        p = spec.resolve()
        assert dict(p) == spec.defaults()
        assert resolved(spec, {})["training"] is False
