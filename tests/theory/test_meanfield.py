"""Mean-field theory: closed forms, fixed points, phases, gains, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actlab.activations import ActivationError, get, specs
from actlab.activations.moments import gaussian_rule, moments
from actlab.theory import (
    TheoryError,
    analyse,
    c_star,
    chi,
    chi_1,
    correlation_map,
    critical_sigma_w2,
    gain,
    gain_table,
    gradient_profile,
    length_map,
    pair_expect,
    phase,
    q_star,
    variance_profile,
)
from actlab.theory.meanfield import _rule

QS = [1e-8, 1e-3, 0.2, 1.0, 7.3, 1e4]


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("sw", [0.5, 2.0, 3.7])
def test_relu_chi_is_half_sigma_w2_for_any_q(q, sw):
    assert abs(chi("relu", q, sw) - sw / 2) < 1e-9


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("a", [0.01, 0.2, 0.5, 0.9])
def test_leaky_relu_chi(q, a):
    assert abs(chi("leaky_relu", q, 1.3, negative_slope=a) - 1.3 * (1 + a * a) / 2) < 1e-9


def test_relu_chi_1_at_fixed_point():
    # sigma_b^2 > 0, sigma_w^2 < 2: q* = sigma_b^2 / (1 - sigma_w^2 / 2), chi_1 = sigma_w^2 / 2.
    assert abs(q_star("relu", 1.5, 0.1) - 0.4) < 1e-12
    assert abs(chi_1("relu", 1.5, 0.1) - 0.75) < 1e-9


@pytest.mark.parametrize("q", [1e-4, 0.05, 0.5, 1.0, 3.0, 50.0, 1e4])
def test_erf_closed_forms(q):
    from actlab.theory.meanfield import _act

    e2, d2, _, _ = _act("erf", {}).one_d(q)
    assert abs(e2 - 2 / math.pi * math.asin(2 * q / (1 + 2 * q))) < 1e-10
    assert abs(d2 - (4 / math.pi) / math.sqrt(1 + 4 * q)) < 1e-10
    assert abs(length_map("erf", q, 1.0) - 2 / math.pi * math.asin(2 * q / (1 + 2 * q))) < 1e-10
    assert abs(chi("erf", q, 1.0) - (4 / math.pi) / math.sqrt(1 + 4 * q)) < 1e-10


@pytest.mark.parametrize("q", [0.01, 1.0, 30.0])
@pytest.mark.parametrize("c", [-1.0, -0.7, 0.0, 0.4, 0.95, 0.99999, 1.0])
def test_pair_expectations_match_closed_forms(q, c):
    ex = 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))
    assert abs(pair_expect("erf", q, c) - ex) < 1e-9
    exd = (4 / math.pi) / math.sqrt((1 + 2 * q) ** 2 - (2 * q * c) ** 2)
    assert abs(pair_expect("erf", q, c, derivative=True) - exd) < 1e-9
    # ReLU: the arc-cosine kernel (Cho & Saul 2009).
    relu = q / (2 * math.pi) * (math.sqrt(max(0.0, 1 - c * c)) + (math.pi - math.acos(c)) * c)
    assert abs(pair_expect("relu", q, c) - relu) < 1e-9 * max(q, 1)
    assert abs(pair_expect("relu", q, c, derivative=True) - (math.pi - math.acos(c)) / (2 * math.pi)) < 1e-9


def test_selu_self_normalising_fixed_point():
    assert abs(moments(get("selu")).mean) < 1e-9
    assert abs(q_star("selu", 1.0, 0.0) - 1.0) < 1e-9
    assert abs(q_star("selu", 1.0, 0.0, q0=0.3) - 1.0) < 1e-9  # reached, not just started at


def test_tanh_reference_values():
    mf = analyse("tanh", 1.5, 0.05)
    assert round(mf.q_star, 5) == 0.41804
    assert round(mf.chi_1, 5) == 0.93864
    assert mf.phase == "ordered" and mf.c_star == 1.0
    assert abs(mf.xi_c + 1 / math.log(mf.chi_1)) < 1e-9


def test_length_map_slope_is_stein_form():
    # dq (slope of the length map at q*) against a central difference.
    mf = analyse("tanh", 1.5, 0.05)
    h = 1e-5
    fd = (length_map("tanh", mf.q_star + h, 1.5, 0.05) - length_map("tanh", mf.q_star - h, 1.5, 0.05)) / (2 * h)
    assert abs(mf.dq - fd) < 1e-8


def test_fixed_points_degenerate_cases():
    assert q_star("tanh", 0.8, 0.0) == 0.0  # collapses
    assert q_star("relu", 2.5, 0.1) == math.inf  # explodes
    assert q_star("relu", 2.0, 0.0, q0=3.0) == 3.0  # every q is fixed
    assert analyse("relu", 2.5, 0.1).notes and math.isnan(analyse("tanh", 0.8, 0.0).c_star)


@pytest.mark.parametrize("sb", [0.0, 0.1, 1.0])
def test_relu_critical_is_two(sb):
    assert abs(critical_sigma_w2("relu", sb) - 2.0) < 1e-9


def test_tanh_critical_line():
    assert abs(critical_sigma_w2("tanh", 0.0) - 1.0) < 1e-6  # chi_1 - 1 ~ (sigma_w^2 - 1)^2 there
    sw = critical_sigma_w2("tanh", 0.05)
    assert abs(chi_1("tanh", sw, 0.05) - 1) < 1e-9
    assert analyse("tanh", sw, 0.05).phase == "critical"
    assert analyse("tanh", sw * 1.1, 0.05).phase == "chaotic"


def test_correlation_fixed_point_chaotic():
    assert c_star("tanh", 2.5, 0.0) == 0.0  # odd f, no bias: inputs decorrelate fully
    cs = c_star("tanh", 4.0, 0.3)
    assert 0 < cs < 1
    assert abs(correlation_map("tanh", cs, 4.0, 0.3) - cs) < 1e-9
    mf = analyse("tanh", 4.0, 0.3)
    assert mf.phase == "chaotic" and 0 < mf.chi_c < 1 and math.isfinite(mf.xi_c)
    assert abs(correlation_map("tanh", 1.0, 4.0, 0.3) - 1.0) < 1e-12


def test_phase_labels():
    assert phase(0.5) == "ordered" and phase(1.5) == "chaotic" and phase(1 + 1e-9) == "critical"
    assert analyse("relu", 2.0).phase == "critical"
    assert analyse("relu", 2.0).xi_c == math.inf


def test_gradient_profile_at_fixed_point_is_power_of_chi():
    # relu, sigma_w^2 = 1.5, sigma_b^2 = 0.1: q* = 0.4; start there (q_1 = 1.5 q_in + 0.1).
    prof = gradient_profile("relu", 1.5, 0.1, depth=6, q_in=0.2)
    expect = 0.75 ** (np.arange(6, 0, -1) / 2)
    assert np.allclose(prof, expect, rtol=1e-12)
    qs = variance_profile("relu", 1.5, 0.1, depth=6, q_in=0.2)
    assert np.allclose(qs, 0.4, rtol=1e-12)


def test_variance_profile_uses_each_layer():
    qs = variance_profile("tanh", 1.5, 0.05, depth=4)
    assert qs[0] == pytest.approx(1.55)
    assert qs[1] == pytest.approx(length_map("tanh", qs[0], 1.5, 0.05))


@pytest.mark.parametrize("spec", [s for s in specs() if s.backprop and s.elementwise], ids=lambda s: s.name)
def test_every_catalog_activation(spec):
    qs = q_star(spec, 1.0, 0.05)
    c1 = chi_1(spec, 1.0, 0.05)
    assert qs >= 0 and math.isfinite(c1) and c1 >= 0
    assert phase(c1) in ("ordered", "critical", "chaotic")
    assert gain(spec) > 0


@pytest.mark.parametrize("spec", [s for s in specs() if not s.backprop or not s.elementwise], ids=lambda s: s.name)
def test_unsupported_activations_get_clear_errors(spec):
    with pytest.raises(TheoryError, match=spec.name):
        analyse(spec)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "x"])
def test_bad_sigma_w2(bad):
    with pytest.raises(TheoryError, match="sigma_w2"):
        analyse("tanh", bad)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "deep"])
def test_bad_depth(bad):
    with pytest.raises(TheoryError, match="depth"):
        analyse("tanh", 1.0, depth=bad)


def test_bad_sigma_b2_and_name_and_params():
    with pytest.raises(TheoryError, match="sigma_b2"):
        q_star("tanh", 1.0, -0.1)
    with pytest.raises(ActivationError, match="Valid names"):
        analyse("tanhh")
    with pytest.raises(ActivationError, match="negative_slope"):
        chi_1("leaky_relu", 1.0, negative_slope=2.0)
    with pytest.raises(TheoryError, match="correlation"):
        pair_expect("tanh", 1.0, 1.5)


def test_vectorised_rule_equals_gaussian_rule():
    br = np.array([-20.0, -1.5, 0.0, 0.0, 2.25])
    z, w = _rule(br, 48)
    z2, w2 = gaussian_rule((-1.5, 0.0, 2.25), 48)
    assert np.array_equal(z, z2) and np.allclose(w, w2, rtol=1e-14, atol=0)


def test_gains_and_torch():
    rows = {r["activation"]: r for r in gain_table()}
    assert rows["relu"]["gain"] == pytest.approx(math.sqrt(2), abs=1e-12)
    assert rows["identity"]["gain"] == pytest.approx(1.0, abs=1e-12)
    a = 0.01
    assert rows["leaky_relu"]["gain"] == pytest.approx(math.sqrt(2 / (1 + a * a)), abs=1e-12)
    for n in ("relu", "identity", "leaky_relu"):
        assert rows[n]["torch_gain"] == pytest.approx(rows[n]["gain"], rel=1e-9)
        assert rows[n]["note"].startswith("same")
    assert rows["tanh"]["torch_gain"] == pytest.approx(5 / 3)
    assert rows["sigmoid"]["torch_gain"] == 1.0
    assert rows["selu"]["torch_gain"] == 0.75
    assert rows["selu"]["gain"] == pytest.approx(1.0, abs=1e-9)
    for n in ("tanh", "sigmoid", "selu"):
        assert rows[n]["why"] and rows[n]["note"].startswith("torch")
    assert rows["gelu"]["torch_gain"] is None
    assert rows["step"]["backward_gain"] is None and "no derivative" in rows["step"]["note"]
    assert gain("leaky_relu", negative_slope=0.3) == pytest.approx(math.sqrt(2 / 1.09))
    # torch's 5/3 puts tanh past the edge of chaos, the exact gain does not.
    assert chi_1("tanh", (5 / 3) ** 2) > 1 > chi_1("tanh", rows["tanh"]["gain"] ** 2) - 0.2


def test_gelu_jump_is_not_an_edge_of_chaos():
    with pytest.raises(TheoryError, match="jumps"):
        critical_sigma_w2("gelu", 0.0)
    assert math.isnan(analyse("gelu", 1.0).critical_sigma_w2)


def test_to_dict_is_json_safe():
    import json

    d = analyse("relu", 2.5, 0.1).to_dict()
    assert d["q_star"] is None  # inf: strict JSON has no infinity (actlab._json)
    json.dumps(d, allow_nan=False)
