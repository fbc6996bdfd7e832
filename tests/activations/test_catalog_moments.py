"""Gaussian expectations against closed forms (``actlab.activations.moments``)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from catalog_cases import SPECS
from scipy import integrate, special

from actlab.activations import get
from actlab.activations.moments import expect, fns, gaussian_rule, moments


def test_relu_moments_closed_form():
    m = moments(get("relu"))
    assert m.mean == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-14)
    assert m.second == pytest.approx(0.5, abs=1e-14)
    assert m.dmean == pytest.approx(0.5, abs=1e-14) and m.dsecond == pytest.approx(0.5, abs=1e-14)
    for q in (0.25, 1.0, 4.0):  # E[relu(sqrt(q) z)] = sqrt(q / 2pi), E[relu^2] = q / 2
        mq = moments(get("relu"), q=q)
        assert mq.mean == pytest.approx(math.sqrt(q / (2 * math.pi)), abs=1e-14)
        assert mq.second == pytest.approx(q / 2, rel=1e-13)


def test_odd_functions_have_zero_mean():
    assert moments(get("tanh")).mean == pytest.approx(0.0, abs=1e-15)
    assert get("tanh").zero_centred and get("erf").zero_centred


def test_sigmoid_mean_is_half():
    m = moments(get("sigmoid"))
    assert m.mean == pytest.approx(0.5, abs=1e-14)
    assert not get("sigmoid").zero_centred


def test_selu_fixed_point():
    """SELU's constants make N(0, 1) a fixed point: E f = 0 and E f^2 = 1."""
    m = moments(get("selu"))
    assert m.mean == pytest.approx(0.0, abs=1e-9)
    assert m.second == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("q", [0.01, 0.3, 1.0, 2.5, 10.0, 100.0, 1e4])
def test_erf_second_moment_closed_form(q):
    """Williams (1997): E[erf(sqrt(q) z)^2] = (2/pi) asin(2q / (1 + 2q))."""
    f, _ = fns(get("erf"))
    got = expect(lambda x: f(x) ** 2, q=q)
    assert got == pytest.approx(2 / math.pi * math.asin(2 * q / (1 + 2 * q)), abs=1e-10)
    assert moments(get("erf"), q=q).second == pytest.approx(got, abs=1e-12)


@pytest.mark.parametrize("q", [0.5, 1.0, 3.0])
def test_elu_mean_closed_form(q):
    """ELU (alpha = 1), C1 but not C2 at 0: E f = sqrt(q) phi(0) + e^(q/2) Phi(-sqrt(q)) - 1/2."""
    s = math.sqrt(q)
    want = s / math.sqrt(2 * math.pi) + math.exp(q / 2) * special.ndtr(-s) - 0.5
    assert moments(get("elu"), q=q).mean == pytest.approx(want, abs=1e-12)


def test_maxout_moments_closed_form():
    """Max of two iid N(0, 1): mean 1/sqrt(pi), second moment 1."""
    spec = next(s for s in SPECS if not s.elementwise)
    m = moments(spec, {"pieces": 2})
    assert m.mean == pytest.approx(1 / math.sqrt(math.pi), abs=1e-12)
    assert m.second == pytest.approx(1.0, abs=1e-12)


def test_gaussian_rule_integrates_polynomials_and_q_zero():
    z, w = gaussian_rule()
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-14)
    assert float((w * z**2).sum()) == pytest.approx(1.0, abs=1e-13)
    assert float((w * z**4).sum()) == pytest.approx(3.0, abs=1e-12)
    assert expect(lambda x: x + 2, q=0.0) == 2.0
    with pytest.raises(ValueError):
        expect(torch.sin, q=-1.0)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.elementwise], ids=lambda s: s.name)
def test_derivative_moments_match_adaptive_quadrature(spec):
    """E[f'(sqrt(q) z)] and E[f'^2] at q = 4 against scipy's adaptive quadrature (split at kinks)."""
    q = 4.0
    _, df = fns(spec)
    kinks = sorted(k.x / 2 for k in spec.kinks(spec.defaults()))

    def quad(power):
        def g(t):
            v = float(df(torch.tensor([2 * t], dtype=torch.float64))[0]) ** power
            return v * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
        edges = [-40.0, *kinks, 40.0]
        return sum(integrate.quad(g, a, b, epsabs=1e-13, limit=200)[0] for a, b in itertools.pairwise(edges))

    m = moments(spec, q=q)
    assert m.dmean == pytest.approx(quad(1), abs=1e-9)
    assert m.dsecond == pytest.approx(quad(2), abs=1e-9)
