"""Numerics at the extremes, in float16, bfloat16, float32 and float64.

Hypothesis draws finite inputs over each dtype's whole range (with +-1e4, +-65504, the
dtype's max and its smallest subnormals mixed in): no NaN out, a finite derivative, outputs
inside ``spec.output_range`` and agreement with the float64 value rounded to the dtype.
Deterministic tests pin the limits at +-1e4 and +-inf, NaN propagation and NumPy inputs
(no floating-point warning of any kind).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from catalog_cases import (
    DTYPE_IDS,
    DTYPES,
    SPECS,
    TOL,
    group_size,
    limit_at,
    param_sets,
    resolved,
    spec_param_cases,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actlab.activations import apply

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NUMPY_SETTINGS = settings(SETTINGS, max_examples=6)


def _random_in_training(spec) -> bool:
    x = torch.linspace(-3, 3, 600 * group_size(spec, {}), dtype=torch.float64)
    return not torch.equal(apply(spec, x, training=True), apply(spec, x, training=True))


# Decided once on a fixed input: comparing two calls on drawn inputs flakes when a draw happens
# to give equal products (bfloat16 has 8 bits of mantissa).
RANDOM_IN_TRAINING = {s.name for s in SPECS if _random_in_training(s)}

_WIDTH = {torch.float16: 16, torch.bfloat16: 32, torch.float32: 32, torch.float64: 64}


def _specials(dtype: torch.dtype) -> list[float]:
    fi = torch.finfo(dtype)
    vals = [0.0, -0.0, 1e4, -1e4, fi.max, -fi.max, fi.tiny, -fi.tiny, fi.smallest_normal / 4, -fi.smallest_normal / 4,
            1.0, -1.0, 88.0, -88.0, 710.0, -710.0]
    if fi.max >= 65504:
        vals += [65504.0, -65504.0]
    if dtype != torch.float16:
        vals += [1e30, -1e30, 3e38, -3e38]
    return [v for v in vals if abs(v) <= fi.max]


def _to_dtype(values: list[float], dtype: torch.dtype) -> torch.Tensor:
    x = torch.tensor(values, dtype=torch.float64).to(dtype)
    big = torch.finfo(dtype).max
    return torch.where(torch.isinf(x), torch.sign(x) * big, x)  # float32 draws that round past bfloat16's max


@st.composite
def finite_inputs(draw, dtype: torch.dtype, k: int) -> torch.Tensor:
    fi = torch.finfo(dtype)
    w = _WIDTH[dtype]
    bound = min(fi.max, torch.finfo(torch.float32).max) if w == 32 else fi.max
    one = st.one_of(
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=w),
        st.floats(-30, 30, allow_nan=False, width=w),
        st.sampled_from(_specials(dtype)),
    )
    vals = draw(st.lists(one, min_size=k, max_size=12 * k))
    vals = vals[: len(vals) // k * k]
    return _to_dtype(vals, dtype)


def _range_ok(spec, p, y: torch.Tensor, dtype) -> None:
    lo, hi = spec.output_range(p)
    slack = TOL[dtype]
    y64 = y.double()
    assert bool((y64 >= lo - slack * max(1.0, abs(lo))).all()), f"{spec.name}: output below {lo}: {y64.min()}"
    assert bool((y64 <= hi + slack * max(1.0, abs(hi))).all()), f"{spec.name}: output above {hi}: {y64.max()}"


def _reference(spec, params, x: torch.Tensor, dtype, training=False) -> torch.Tensor:
    with torch.no_grad():
        return apply(spec, x.double(), training=training, **params).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@SETTINGS
@given(data=st.data())
def test_finite_inputs_give_finite_sane_outputs(spec, dtype, data):
    params = data.draw(st.sampled_from(param_sets(spec)), label="params")
    p = resolved(spec, params)
    k = group_size(spec, params)
    x = data.draw(finite_inputs(dtype, k), label="x")
    training = data.draw(st.booleans(), label="training")
    xg = x.clone().requires_grad_(True)
    y = apply(spec, xg, training=training, **params)
    assert y.dtype == dtype
    assert not torch.isnan(y).any(), f"{spec.name}: NaN for finite input {x[torch.isnan(y)]}"
    _range_ok(spec, p, y.detach(), dtype)
    y.backward(torch.ones_like(y))
    assert torch.isfinite(xg.grad).all(), f"{spec.name}: non-finite derivative at {x[~torch.isfinite(xg.grad)]}"
    if spec.elementwise and not training:  # the declared derivative itself, not only the fused vjp
        d = spec.derivative(x, y.detach(), p)
        assert d.dtype == dtype and torch.isfinite(d).all(), f"{spec.name}: derivative {d} at {x}"
    if training and spec.name in RANDOM_IN_TRAINING:
        return  # a random forward has no reference value; test_catalog_gradcheck checks its slopes
    # The same inputs in float64, rounded to the dtype: the low-precision path loses nothing but rounding.
    want = _reference(spec, params, x, dtype, training)
    atol = TOL[dtype]
    if spec.builtin is not None and not training:
        # Where the fast path is torch's own kernel, it may carry that kernel's error: torch's
        # vectorised float32 GELU on AVX2 is 5e-7 off at x = -3 (1 + erf cancels), > 4 ulp of 1.
        with torch.no_grad():
            theirs = spec.builtin(x, {**p, "training": False}).double()
        atol = max(atol, float((theirs - want.double()).abs().nan_to_num(0.0).max()) * 1.01)
    torch.testing.assert_close(y.detach(), want, rtol=TOL[dtype], atol=atol, equal_nan=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_limits_at_infinity_and_1e4(spec, params, dtype):
    """f(+-inf) is the function's limit (measured at |x| = 1e300 in float64) and f(+-1e4) is the
    float64 value rounded to the dtype, exactly where that underflows (sigmoid(-1e4) = 0)."""
    k = group_size(spec, params)
    for side in (-1, 1):
        lim = limit_at(spec, params, side)
        x_inf = torch.full((k,), side * math.inf, dtype=dtype)
        y_inf = apply(spec, x_inf, **params)
        assert not torch.isnan(y_inf).any(), f"{spec.name}({side}*inf) is NaN, limit {lim}"
        want = torch.tensor(lim, dtype=torch.float64).to(dtype)
        torch.testing.assert_close(y_inf, want.expand_as(y_inf), rtol=TOL[dtype], atol=TOL[dtype],
                                   msg=f"{spec.name}({side}*inf) != limit {lim}")
        x_big = torch.full((k,), side * 1e4, dtype=dtype)
        got = apply(spec, x_big, **params)
        ref = _reference(spec, params, x_big, dtype)
        torch.testing.assert_close(got, ref, rtol=TOL[dtype], atol=torch.finfo(dtype).tiny,
                                   msg=f"{spec.name}({side}e4) in {dtype}")
        xg = x_inf.clone().requires_grad_(True)
        apply(spec, xg, **params).sum().backward()
        assert not torch.isnan(xg.grad).any(), f"{spec.name}'({side}*inf) is NaN"


def test_named_limits():
    """The issue's examples, through the registry's own names for them."""
    from actlab.activations import get

    for dtype in DTYPES:
        def f(name, v, dtype=dtype, **p):
            return float(apply(get(name), torch.tensor([v], dtype=dtype), **p)[0])

        assert f("sigmoid", -1e4) == 0.0 and f("sigmoid", 1e4) == 1.0
        assert f("softplus", 1e4) == pytest.approx(1e4, rel=TOL[dtype])
        assert f("softplus", -1e4) == 0.0
        for name in ("silu", "mish", "gelu", "gelu_tanh", "swish"):
            assert f(name, -1e4) == 0.0 and f(name, -math.inf) == 0.0
            assert f(name, 1e4) == pytest.approx(1e4, rel=TOL[dtype]) and f(name, math.inf) == math.inf
        assert f("elu", -1e4) == -1.0 and f("elu", -math.inf) == -1.0 and f("elu", math.inf) == math.inf
        assert f("elu", -1e4, alpha=0.5) == -0.5


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_nan_in_nan_out(spec, dtype):
    k = group_size(spec, {})
    x = torch.tensor([0.5, -2.0, math.nan, 3.0] * k, dtype=dtype).reshape(k, 4).t().reshape(-1)  # group 2 all NaN
    x[0] = math.nan  # and group 0 has one NaN piece
    y = apply(spec, x)
    isnan = torch.isnan(y)
    if spec.elementwise:
        assert torch.equal(isnan, torch.isnan(x)), f"{spec.name}: {x} -> {y}"
    else:
        assert isnan[0] and isnan[2] and not isnan[1] and not isnan[3], f"{spec.name}: {x} -> {y}"
    xg = x.clone().requires_grad_(True)
    apply(spec, xg).sum().backward()  # backward at NaN must not raise


@pytest.mark.parametrize("np_dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@NUMPY_SETTINGS
@given(data=st.data())
@example(data=None)
def test_numpy_inputs_no_warnings(spec, np_dtype, data):
    dtype = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64}[np_dtype]
    k = group_size(spec, {})
    if data is None:  # the explicit extremes, including +-inf and NaN
        vals = _specials(dtype) + [math.inf, -math.inf, math.nan]
        vals = (vals * k)[: len(vals) * k]
        x = np.array(vals, dtype=np_dtype)
    else:
        x = data.draw(finite_inputs(dtype, k), label="x").numpy().astype(np_dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = apply(spec, x)
        scalar = apply(spec, np_dtype(0.5)) if spec.elementwise else None
    assert isinstance(y, np.ndarray) and y.dtype == np_dtype
    expected_len = len(x) // k
    assert y.shape == (expected_len,)
    finite = np.isfinite(x).reshape(-1, k).all(-1) if k > 1 else np.isfinite(x)
    assert not np.isnan(y[finite]).any()
    torch.testing.assert_close(torch.from_numpy(y), apply(spec, torch.from_numpy(x)), equal_nan=True,
                               rtol=0, atol=0)
    if scalar is not None:
        assert np.ndim(scalar) == 0 and np.asarray(scalar).dtype == np_dtype
